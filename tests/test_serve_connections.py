"""serve's connections under waitress, over real sockets: idle ones closed in time, a cap per client, and
real requests answered meanwhile; the server stopped cleanly from its own loop."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
from support.ports import free_port
from support.serve import serving

from broadsheet.core.config import Config, load_config
from broadsheet.faces.serve.app import make_app

IDLE_CLIENT = "127.0.0.2"  # loopback, but not the trusted proxy (127.0.0.1): a client of its own
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: %b\r\n\r\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Config:
    port = free_port()
    path = tmp_path / "broadsheet.toml"
    path.write_text(f'list_id = "weekly.example.org"\n[serve]\npublic_url = "http://127.0.0.1:{port}"\n', "utf-8")
    monkeypatch.setenv("BROADSHEET_SECRET", "connections-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    return load_config(path)


def port_of(config: Config) -> int:
    return int(config.serve.public_url.rsplit(":", 1)[1])


@contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections from IDLE_CLIENT that send nothing."""
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((IDLE_CLIENT, 0))
            sock.connect(("127.0.0.1", port))
            opened.append(sock)
        yield opened


def closed_by_server(sock: socket.socket, wait: float = 20.0) -> bool:
    """True once the server closes the connection (waits at most ``wait`` seconds: a generous bound); the
    rest of an answer still on its way (waitress may send a body apart from its head) is read past."""
    sock.settimeout(wait)
    try:
        while sock.recv(1024):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def answered(sock: socket.socket, host: bytes) -> bool:
    """True when a health check sent over this connection is answered 200; False when it was closed."""
    try:
        sock.sendall(HEALTH % host)
        sock.settimeout(20)
        answer = sock.recv(1024)
        while answer and not answer.endswith(b"ok\n"):  # waitress may send the head and the body apart
            more = sock.recv(1024)
            answer += more
            if not more:
                break
        return answer.startswith(b"HTTP/1.1 200")
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_idle_connections_close_after_the_configured_time_and_real_requests_are_answered(config):
    port = port_of(config)
    with serving(make_app(config), config, port, idle_seconds=1), idle_sockets(port, 50) as idle:
        assert requests.get(f"{config.serve.public_url}/healthz", timeout=10).status_code == 200
        assert all(closed_by_server(sock) for sock in idle)


def test_connections_past_the_cap_for_one_client_are_closed_at_once(config):
    port = port_of(config)
    host = config.serve.public_url.removeprefix("http://").encode()
    with serving(make_app(config), config, port, per_client=10), idle_sockets(port, 30) as idle:
        assert requests.get(f"{config.serve.public_url}/healthz", timeout=10).status_code == 200  # another client
        kept = [answered(sock, host) for sock in idle]
    assert kept.count(True) == 10 and kept.count(False) == 20


def test_stopping_the_server_closes_its_connections_and_ends_its_loop(config):
    """`serving` stops waitress from its own loop and asserts the loop thread ended (closing the server
    from another thread left the loop polling a kept-alive connection and closed sockets: EBADF)."""
    port = port_of(config)
    with socket.socket() as client:
        with serving(make_app(config), config, port):
            client.connect(("127.0.0.1", port))
            assert answered(client, config.serve.public_url.removeprefix("http://").encode())  # kept alive
        assert closed_by_server(client, wait=5)

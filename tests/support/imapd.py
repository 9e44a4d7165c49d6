"""A real IMAP server for the tests: pymap's in-memory backend on 127.0.0.1, STARTTLS with a trustme cert."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

from support.ports import PortTaken, on_free_port
from support.serve import stop_process

USER, PASSWORD = "news", "imap-secret-pw"


@dataclass
class ImapServer:
    host: str
    port: int  # STARTTLS
    ca_file: str
    tls_port: int = 0  # implicit TLS (IMAPS), through a TLS front on 127.0.0.1

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=5)
        imap.starttls(ssl.create_default_context(cafile=self.ca_file))
        imap.login(USER, PASSWORD)
        return imap

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        imap = self.client()
        try:
            for raw in messages:
                status, _ = imap.append(folder, None, None, raw)
                assert status == "OK"
        finally:
            imap.logout()

    def folders(self) -> dict[str, int]:
        """Every folder and how many messages it holds."""
        imap = self.client()
        try:
            return {name: _messages(imap, name) for name in _folder_names(imap)}
        finally:
            imap.logout()

    def empty(self) -> dict[str, int]:
        """Remove every message and every folder but INBOX (a server shared by several tests, as if new);
        returns what is left, as ``folders``."""
        imap = self.client()
        try:
            for name in _folder_names(imap):
                if _messages(imap, name):
                    assert imap.select(f'"{name}"')[0] == "OK"
                    imap.store("1:*", "+FLAGS", "\\Deleted")
                    imap.expunge()
                    imap.close()
                if name.upper() != "INBOX":
                    assert imap.delete(f'"{name}"')[0] == "OK"
            return {name: _messages(imap, name) for name in _folder_names(imap)}
        finally:
            imap.logout()

    def count(self, folder: str) -> int:
        imap = self.client()
        try:
            status, data = imap.select(f'"{folder}"', readonly=True)
            return int(data[0]) if status == "OK" else -1
        finally:
            imap.logout()


def _folder_names(imap: imaplib.IMAP4) -> list[str]:
    """The folders a LIST answers, from lines like ``(\\HasNoChildren) "/" "broadsheet-processed"``."""
    status, lines = imap.list()
    assert status == "OK"
    names = []
    for line in lines:
        if isinstance(line, bytes) and line:
            text = line.decode()
            names.append(text.split('"')[-2] if text.endswith('"') else text.rsplit(" ", 1)[1])
    return names


def _messages(imap: imaplib.IMAP4, name: str) -> int:
    status, data = imap.status(f'"{name}"', "(MESSAGES)")
    assert status == "OK", data
    return int(data[0].decode().rsplit("MESSAGES ", 1)[1].rstrip(")"))


@contextlib.contextmanager
def imap_server(tmp_path: Path):
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "imap-key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "imap-cert.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "imap-ca.pem"))

    def start(port: int) -> tuple[subprocess.Popen[bytes], int]:
        process = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process, port
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode()[-500:] if process.poll() is not None else ""
                    stop_process(process)
                    if "already in use" in error:
                        raise PortTaken(error) from None
                    raise RuntimeError(f"pymap did not start: {error}") from None
                time.sleep(0.05)

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-c",
            "import sys; from pymap.main import main; sys.exit(main())",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--cert",
            str(tmp_path / "imap-cert.pem"),
            "--key",
            str(tmp_path / "imap-key.pem"),
            "dict",
            "--demo-user",
            USER,
            "--demo-password",
            PASSWORD,
        ]

    process, port = on_free_port(start)
    try:
        with tls_front(port, tmp_path / "imap-cert.pem", tmp_path / "imap-key.pem") as tls_port:
            yield ImapServer("127.0.0.1", port, str(tmp_path / "imap-ca.pem"), tls_port)
    finally:
        stop_process(process)


@contextlib.contextmanager
def tls_front(backend_port: int, cert: Path, key: str | Path):
    """Implicit TLS on a free 127.0.0.1 port, each connection relayed in plain to the backend port
    (pymap speaks STARTTLS only); yields the TLS port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def relay(source, target) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                secure = context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                client.close()
                continue
            backend = socket.create_connection(("127.0.0.1", backend_port))
            threading.Thread(target=relay, args=(secure, backend), daemon=True).start()
            threading.Thread(target=relay, args=(backend, secure), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()

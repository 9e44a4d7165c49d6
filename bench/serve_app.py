"""Benchmark: serve's WSGI app alone, in process (no waitress, no sockets, no other threads): its CPU per one-click.

Posts ``--unsubscribes`` RFC 8058 one-clicks for as many readers straight into the app, urlencoded (as
bench/serve.py) and multipart as Gmail sends them (a new boundary each), and prints the process CPU per
request, store write included. Steadier than bench/serve.py's figure, which a loaded host swings widely.

    .venv/bin/python bench/serve_app.py [--unsubscribes 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compose import machine  # noqa: E402 - bench/compose.py, beside this script

from broadsheet.core.config import load_config  # noqa: E402
from broadsheet.core.tokens import make_token  # noqa: E402
from broadsheet.faces.serve.app import make_app  # noqa: E402

SECRET = "bench-serve-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
HOST = "127.0.0.1:8000"


def body(kind: str, n: int) -> tuple[str, bytes]:
    """(Content-Type, body) of a one-click: ``urlencoded``, or ``multipart`` with a boundary of its own."""
    if kind == "urlencoded":
        return "application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"
    boundary = f"{n:028x}"
    form = f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--{boundary}--\r\n'
    return f"multipart/form-data; boundary={boundary}", form.encode()


def environ(token: str, n: int, kind: str) -> dict[str, object]:
    """What waitress hands the app for one POST, behind the trusted proxy (a client address each)."""
    content_type, data = body(kind, n)
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/u/{token}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
        "HTTP_HOST": HOST,
        "HTTP_USER_AGENT": "Google-OneClick",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.input_terminated": True,
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
    }


def run(folder: Path, kind: str, count: int, round_: int) -> float:
    """CPU seconds per one-click for ``count`` readers never seen before."""
    config = load_config(folder / "broadsheet.toml")
    app = make_app(config)
    statuses: list[str] = []
    first = (round_ * 2 + (kind == "multipart")) * count
    requests = [
        environ(make_token("unsubscribe", f"leaver{n}@example.net", config.list_id, SECRET), n, kind)
        for n in range(first, first + count)
    ]
    try:
        app(environ(make_token("unsubscribe", "warm@example.net", config.list_id, SECRET), 0, kind), lambda *a: None)
        started = time.process_time()
        for request in requests:
            app(request, lambda status, headers, exc_info=None: statuses.append(status))
        spent = time.process_time() - started
    finally:
        app.close()
    if set(statuses) != {"200 OK"}:
        raise SystemExit(f"answers other than 200: {sorted(set(statuses))}")
    return spent / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unsubscribes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["BROADSHEET_SECRET"] = SECRET
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for file in ("broadsheet.toml", "subscribers.example.csv"):
            shutil.copy(ROOT / file, folder / file)
        shutil.copytree(ROOT / "assets", folder / "assets")
        config = folder / "broadsheet.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                'public_url = "https://newsletter.example.org"', f'public_url = "http://{HOST}"'
            ),
            encoding="utf-8",
        )
        print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}; load {os.getloadavg()[0]:.1f}")
        for kind in ("urlencoded", "multipart"):
            figures = [run(folder, kind, args.unsubscribes, n) * 1e6 for n in range(args.repeat)]
            print(f"{kind}: {' / '.join(f'{f:.0f}' for f in figures)} µs of CPU per one-click, store write included")


if __name__ == "__main__":
    main()

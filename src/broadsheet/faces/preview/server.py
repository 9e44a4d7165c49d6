"""The preview's HTTP server on 127.0.0.1: the page, the email, its images, and reload events.

Only a fixed set of paths answers; images are looked up by exact name among the current build's
files, so ``..`` and its encoded forms can never reach anything else (they answer 404).
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2

from broadsheet.core.content.images import published_src
from broadsheet.core.errors import cannot_listen
from broadsheet.core.lint import HOW_TO_INSTALL, counts

from .assets import FINDINGS, PAGE
from .builder import Build, Builder

HOST = "127.0.0.1"
KEEPALIVE_SECONDS = 15.0
NO_SCRIPTS = "script-src 'none'; object-src 'none'"  # for the email itself: like an inbox, run nothing
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_templates = jinja2.Environment(autoescape=True)
PAGE_TEMPLATE = _templates.from_string(PAGE)
FINDINGS_TEMPLATE = _templates.from_string(FINDINGS)


class Events:
    """Numbered build/findings events; each reload stream waits for the ones it has not seen."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.seq = 0
        self.recent: deque[tuple[int, str, int]] = deque(maxlen=32)
        self.closed = False

    def publish(self, kind: str, generation: int) -> None:
        with self.changed:
            self.seq += 1
            self.recent.append((self.seq, kind, generation))
            self.changed.notify_all()

    def wait(self, after: int, timeout: float) -> list[tuple[int, str, int]]:
        with self.changed:
            self.changed.wait_for(lambda: self.seq > after or self.closed, timeout=timeout)
            return [event for event in self.recent if event[0] > after]

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()


class PreviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, builder: Builder, events: Events):
        self.builder = builder
        self.events = events
        try:
            super().__init__((HOST, port), PreviewHandler)
        except (OSError, OverflowError) as exc:  # OverflowError: a port above 65535
            raise cannot_listen(
                exc, HOST, port, "choose another port with --port N, or stop the other server"
            ) from None


class PreviewHandler(BaseHTTPRequestHandler):
    server: PreviewHTTPServer
    server_version = "broadsheet-preview"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if not self._local_host():
            return self._send(HTTPStatus.MISDIRECTED_REQUEST, b"use http://127.0.0.1\n", "text/plain; charset=utf-8")
        path = safe_path(self.path)
        build = self.server.builder.current
        routes = {
            "/": self._page,
            "/email.html": self._email,
            "/web.html": self._web,
            "/findings": self._findings,
            "/status.json": self._status,
        }
        if path in routes:
            routes[path](build)
        elif path == "/events":
            self._events(build)
        elif path is not None and path.startswith("/images/") and path[8:] in build.images:
            self._file(build.images[path[8:]])
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _local_host(self) -> bool:
        """Refuse other Host names: a web page re-pointing its own name at 127.0.0.1 must not read us."""
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in {f"{HOST}:{port}", f"localhost:{port}"}

    def _page(self, build: Build) -> None:
        self._send_text(render_page(build), "text/html; charset=utf-8")

    def _email(self, build: Build) -> None:
        if build.email is None:
            return self._send(HTTPStatus.NOT_FOUND, b"no build yet\n", "text/plain; charset=utf-8")
        self._send_text(local_images(build.email.html, build), "text/html; charset=utf-8", NO_SCRIPTS)

    def _web(self, build: Build) -> None:
        if build.rendered is None:
            return self._send(HTTPStatus.NOT_FOUND, b"no build yet\n", "text/plain; charset=utf-8")
        self._send_text(local_images(build.rendered.web_html, build), "text/html; charset=utf-8", NO_SCRIPTS)

    def _findings(self, build: Build) -> None:
        body = {"generation": build.generation, "html": render_findings(build), "count": lint_count(build)}
        self._send_text(json.dumps(body), "application/json")

    def _status(self, build: Build) -> None:
        body = {
            "generation": build.generation,
            "ok": build.error is None,
            "seconds": build.seconds,
            "error": str(build.error) if build.error else None,
            "title": build.rendered.title if build.rendered is not None else None,
        }
        self._send_text(json.dumps(body), "application/json")

    def _file(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        self._send(HTTPStatus.OK, data, CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    def _events(self, build: Build) -> None:
        """Server-Sent Events: 'build' (reload the page) and 'findings' (refresh the lint tab)."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        events = self.server.events
        seen = events.seq
        try:
            self._write_event("build", build.generation, retry=True)
            while True:  # wait() answers at once when closed
                new = events.wait(seen, KEEPALIVE_SECONDS)
                if events.closed:
                    return
                if not new:
                    self.wfile.write(b": keepalive\n\n")
                for seq, kind, generation in new:
                    self._write_event(kind, generation)
                    seen = seq
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return

    def _write_event(self, kind: str, generation: int, *, retry: bool = False) -> None:
        prefix = "retry: 500\n" if retry else ""
        self.wfile.write(f"{prefix}event: {kind}\ndata: {generation}\n\n".encode())
        self.wfile.flush()

    def _send_text(self, text: str, content_type: str, policy: str = "") -> None:
        self._send(HTTPStatus.OK, text.encode("utf-8"), content_type, policy)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, policy: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if policy:
            self.send_header("Content-Security-Policy", policy)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


def safe_path(raw: str) -> str | None:
    """The request path fully percent-decoded, or None when it tries to climb (``..``, ``\\``, NUL)."""
    path = urlsplit(raw).path
    for _ in range(5):  # undo double (and deeper) encoding
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return None
    if "\\" in path or "\x00" in path or ".." in path.split("/") or not path.startswith("/"):
        return None
    return path if posixpath.normpath(path) == path.rstrip("/") or path == "/" else None


def local_images(html: str, build: Build) -> str:
    """Point the email's published image URLs at this server's /images/, and open links in a new tab.

    The published address percent-encodes the slug (``published_src``), so a folder named in any script
    is found as the email writes it."""
    if build.config is not None and build.config.base_url and build.rendered is not None:
        html = html.replace(published_src(build.config.base_url, build.rendered.slug, ""), "/images/")
    return html.replace("<head>", '<head><base target="_blank">', 1)


def render_page(build: Build) -> str:
    email = build.email
    return PAGE_TEMPLATE.render(
        title=build.rendered.title if build.rendered else "broadsheet",
        generation=build.generation,
        seconds=build.seconds,
        email=email,
        error=build.error,
        preheader=build.rendered.preheader if build.rendered else "",
        lint_count=lint_count(build),
        findings_html=render_findings(build),
    )


def render_findings(build: Build) -> str:
    note = ""
    if build.config is not None and build.validated and not _has_validator(build):
        note = f"The MJML validator is not installed: {HOW_TO_INSTALL}."
    return FINDINGS_TEMPLATE.render(findings=build.findings, validated=build.validated, validator_note=note)


def lint_count(build: Build) -> str:
    """The Lint tab's badge: errors in red, warnings in amber, a tick when clean."""
    errors, warnings = counts(build.findings)
    badges = [
        f'<span class="count {kind}" title="{n} {kind}s">{n}</span>'
        for kind, n in (("error", errors), ("warning", warnings))
        if n
    ]
    return " ".join(badges) or '<span class="count ok">✓</span>'


def _has_validator(build: Build) -> bool:
    from broadsheet.core.lint import find_validator

    return build.config is not None and find_validator(build.config.root) is not None

"""The little WSGI vocabulary serve needs: a parsed request and a response (no framework)."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Content Too Large",
    421: "Misdirected Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class BodyTooLarge(Exception):
    """The request body is over the limit (answered 413)."""


@dataclass
class Request:
    """One request: method, path, client address, headers as WSGI gives them, and the raw body."""

    method: str
    path: str
    client: str
    environ: WSGIEnvironment
    body: bytes = b""

    @classmethod
    def read(cls, environ: WSGIEnvironment, max_body: int) -> Request:
        """Parse ``environ``; a body longer than ``max_body`` raises BodyTooLarge before it is read."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = max_body + 1
        if length > max_body or length < 0:
            raise BodyTooLarge
        body = environ["wsgi.input"].read(length) if length else b""
        path = environ.get("PATH_INFO", "/").encode("latin-1", "replace").decode("utf-8", "replace")
        return cls(environ.get("REQUEST_METHOD", "GET").upper(), path, environ.get("REMOTE_ADDR", ""), environ, body)

    def header(self, name: str) -> str | None:
        key = "CONTENT_TYPE" if name.lower() == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        return self.environ.get(key)

    def headers(self) -> dict[str, str]:
        """Every request header, by its usual name (``X-Foo-Bar``)."""
        found = {"Content-Type": self.environ.get("CONTENT_TYPE", "")}
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                found["-".join(word.capitalize() for word in key[5:].split("_"))] = value
        return found

    def form(self) -> dict[str, str]:
        """The fields of a urlencoded or multipart form body (first value of each); {} for anything else."""
        kind, _, params = (self.header("Content-Type") or "").partition(";")
        kind = kind.strip().lower()
        try:
            if kind == FORM:
                return dict(reversed(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)))
            if kind == MULTIPART:
                return _multipart(self.body, params)
        except (UnicodeDecodeError, ValueError, LookupError):  # bad bytes, bad structure, unknown charset
            return {}
        return {}


def _multipart(body: bytes, params: str) -> dict[str, str]:
    """Text fields of a multipart/form-data body (files are ignored)."""
    head = f"Content-Type: {MULTIPART};{params}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename() or name in fields:
            continue
        payload = part.get_payload(decode=True)
        fields[str(name)] = (payload if isinstance(payload, bytes) else b"").decode(
            part.get_content_charset() or "utf-8"
        )
    return fields


@dataclass
class Response:
    """Status, body and headers; ``finish`` hands them to WSGI."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def finish(self, start_response: StartResponse, extra: dict[str, str]) -> list[bytes]:
        headers = {"Content-Type": self.content_type, "Content-Length": str(len(self.body)), **extra, **self.headers}
        start_response(f"{self.status} {REASONS.get(self.status, 'Unknown')}", list(headers.items()))
        return [self.body]

"""The little WSGI vocabulary serve needs: a parsed request and a response (no framework)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# Forms are read by hand, with caps, never by email.parser: a Content-Type of thousands of parameters, or
# a Content-Disposition of nested comments, cost it seconds of CPU (or a RecursionError) per request.
MAX_CONTENT_TYPE = 256  # characters of a Content-Type worth reading
MAX_PARTS = 20  # parts of a multipart form read (serve's forms have a handful of fields)
MAX_PART_HEAD = 1024  # bytes of one part's headers
BOUNDARY = re.compile(
    r"""boundary=(?:"([0-9A-Za-z'()+_,./:=? -]{1,70})"|([0-9A-Za-z'()+_,./:=?-]{1,70}))\s*(?:;|\Z)""", re.I
)  # RFC 2046's bchars
FIELD_NAME = re.compile(r"""(?:^|;)\s*name=(?:"([^"\\\r\n]{1,100})"|([A-Za-z0-9_.-]{1,100}))\s*(?:;|\Z)""", re.I)
FILE_PART = re.compile(r"(?:^|;)\s*filename\*?=", re.I)
CHARSET = re.compile(r"""(?:^|;)\s*charset="?([^";\s]{1,40})""", re.I)
UTF8 = ("utf-8", "utf8", "us-ascii")
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
        content_type = self.header("Content-Type") or ""
        if len(content_type) > MAX_CONTENT_TYPE:
            return {}
        kind, _, params = content_type.partition(";")
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
    """Text fields of a multipart/form-data body (first value of each; files and parts past MAX_PARTS are
    ignored); a bad byte in a field is a UnicodeDecodeError (form() answers {})."""
    boundary = BOUNDARY.search(params)
    if boundary is None:
        return {}
    fields: dict[str, str] = {}
    delimiter = b"\r\n--" + (boundary[1] or boundary[2]).encode("ascii")
    for section in (b"\r\n" + body).split(delimiter)[1 : MAX_PARTS + 1]:  # [0]: the preamble
        if section.startswith(b"--"):  # the closing delimiter
            break
        head, blank, content = section.partition(b"\r\n\r\n")
        if not blank or len(head) > MAX_PART_HEAD:
            continue
        disposition = ""
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "content-disposition":
                disposition = value.strip()
            elif key == "content-type" and (charset := CHARSET.search(value)) and charset[1].lower() not in UTF8:
                raise LookupError(f"a form field in {charset[1]}")  # text of ours is UTF-8: form() answers {}
        kind, _, disposition_params = disposition.partition(";")
        name = FIELD_NAME.search(disposition_params) if kind.strip().lower() == "form-data" else None
        if name is None or FILE_PART.search(disposition_params) or (name[1] or name[2]) in fields:
            continue
        fields[name[1] or name[2]] = content.decode("utf-8")
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

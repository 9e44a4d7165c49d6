"""The little WSGI vocabulary serve needs: a parsed request and a response (no framework)."""

from __future__ import annotations

import codecs
import itertools
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
    r"""(?:^|;)\s*boundary=(?:"([0-9A-Za-z'()+_,./:=? -]{1,70})"|([0-9A-Za-z'()+_,./:=?-]{1,70}))\s*(?:;|\Z)""", re.I
)  # RFC 2046's bchars
FIELD_NAME = re.compile(r"""(?:^|;)\s*name=(?:"([^"\\\r\n]{1,100})"|([A-Za-z0-9_.-]{1,100}))\s*(?:;|\Z)""", re.I)
FILE_PART = re.compile(r"(?:^|;)\s*filename\*?=", re.I)
CHARSET = re.compile(r"""(?:^|;)\s*charset="?([^";\s]{1,40})""", re.I)
PART_BREAK = re.compile(rb"\r?\n\r?\n")  # between a part's headers and its content
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
    ignored). A field in a charset Python does not know, a transfer encoding, or bad bytes raise
    (form() answers {})."""
    boundary = BOUNDARY.search(params)
    if boundary is None:
        return {}
    token = re.escape((boundary[1] or boundary[2]).encode("ascii"))
    delimiter = re.compile(rb"\r?\n--" + token + rb"(--)?[ \t]*(?:\r?\n|\Z)")  # a whole line (RFC 2046)
    text = b"\r\n" + body  # the first delimiter may open the body
    marks = list(itertools.islice(delimiter.finditer(text), MAX_PARTS + 1))
    fields: dict[str, str] = {}
    for this, following in itertools.pairwise(marks):
        if this[1]:  # the closing delimiter
            break
        part = text[this.end() : following.start()]
        blank = PART_BREAK.search(part)
        if blank is None or blank.start() > MAX_PART_HEAD:
            continue
        name, charset = _part_head(part[: blank.start()].decode("utf-8"))
        if name is not None and name not in fields:
            fields[name] = part[blank.end() :].decode(charset)
    return fields


def _part_head(head: str) -> tuple[str | None, str]:
    """(the field's name, or None for a file or a part without one; its charset) from a part's headers."""
    disposition, charset = "", "utf-8"
    for line in re.split(r"\r?\n", head):
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "content-disposition":
            disposition = value.strip()
        elif key == "content-type" and (declared := CHARSET.search(value)):
            charset = codecs.lookup(declared[1]).name  # LookupError for a name Python does not know
        elif key == "content-transfer-encoding" and value.strip().lower() not in ("7bit", "8bit", "binary"):
            raise ValueError("a transfer-encoded form field")  # browsers never send one (RFC 7578)
    kind, _, params = disposition.partition(";")
    name = FIELD_NAME.search(params) if kind.strip().lower() == "form-data" else None
    if name is None or FILE_PART.search(params):
        return None, charset
    return name[1] or name[2], charset


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

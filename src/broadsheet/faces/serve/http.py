"""serve's request and response: werkzeug's, with form parsing held to serve's limits."""

from __future__ import annotations

import codecs
import io
import re
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.wrappers import Request as BaseRequest
from werkzeug.wrappers import Response as BaseResponse

if TYPE_CHECKING:
    from typing import IO

    from werkzeug.formparser import t_parse_result as ParseResult

# A Content-Type past this many characters is no form (serve's forms have a short one), and its
# parameters are never parsed.
MAX_CONTENT_TYPE = 256
MAX_PARTS = 20  # parts of a multipart form (serve's forms have a handful of fields); more is a 413
# bytes of one part's headers: werkzeug is slow on a long Content-Disposition full of parameters
MAX_PART_HEAD = 1024
PART_BREAK = re.compile(rb"\r?\n\r?\n")  # between a part's headers and its content
PLAIN_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})  # browsers never send another (RFC 7578)
# What a form's own boundary is swapped for before parsing: no "-" in it, so no "--" + it can form across a
# swapped one and the text beside it
COMMON_BOUNDARY = b"BroadsheetForm"
DELIMITER_END = re.compile(rb"(?:--)?[^\S\r\n]*(?:\r\n|\r|\n|\Z)")  # after a boundary, as werkzeug reads one


class FieldParser(MultiPartParser):
    """werkzeug's multipart parser, refusing what serve never reads: a transfer-encoded field (never taken
    as the text it hides), a field in a charset Python does not know (a declared one is honoured), and a
    part whose headers run past MAX_PART_HEAD (the whole form is then read as no fields)."""

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        body = stream.read()  # at most the request's limit
        boundary, body = common_boundary(boundary, body)
        delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")  # as werkzeug's
        for mark in delimiter.finditer(body):
            if not mark[1] and not PART_BREAK.search(body[mark.end() : mark.end() + MAX_PART_HEAD + 4]):
                raise ValueError("a form part's headers are too long")
        return super().parse(io.BytesIO(body), boundary, content_length)

    def get_part_charset(self, headers: Headers) -> str:
        if headers.get("content-transfer-encoding", "").strip().lower() not in PLAIN_ENCODINGS:
            raise ValueError("a transfer-encoded form field")
        declared = parse_options_header(headers.get("content-type"))[1].get("charset", "")
        try:
            return codecs.lookup(declared).name if declared else "utf-8"
        except LookupError:
            raise ValueError(f"unknown charset {declared[:40]!r}") from None


def common_boundary(boundary: bytes, body: bytes) -> tuple[bytes, bytes]:
    """The body with its boundary swapped for COMMON_BOUNDARY: each client sends a new one, and werkzeug
    compiles two regular expressions per boundary. Kept as sent where the swap could change what is read:
    a shorter boundary (the body would grow), COMMON_BOUNDARY already in the body, or the boundary
    anywhere but in a delimiter line (a value holding it would change)."""
    marker, common = b"--" + boundary, b"--" + COMMON_BOUNDARY
    if len(boundary) < len(COMMON_BOUNDARY) or common in body:
        return boundary, body
    at = body.find(marker)
    while at != -1:
        end = at + len(marker)
        if (at and body[at - 1] not in b"\r\n") or not DELIMITER_END.match(body, end):
            return boundary, body
        at = body.find(marker, at + 1)
    return COMMON_BOUNDARY, body.replace(marker, common)


class FormParser(FormDataParser):
    """werkzeug's form parser with serve's multipart rules (a bad form is read as no fields)."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> ParseResult:
        parser = FieldParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class Request(BaseRequest):
    """One request; ``limit`` bytes of body at most (more: RequestEntityTooLarge, answered 413), forms
    parsed by FormParser. ``form`` holds the text fields (first value by ``get``)."""

    form_data_parser_class = FormParser
    max_form_parts = MAX_PARTS

    def __init__(self, environ: Any, limit: int):
        super().__init__(environ)
        self.max_content_length = self.max_form_memory_size = limit

    def too_large(self) -> bool:
        """The declared body is over the limit (or unreadable), known before any of it is read."""
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return True
        return not 0 <= length <= (self.max_content_length or 0)

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and len(self.headers.get("Content-Type", "")) > MAX_CONTENT_TYPE:
            empty: MultiDict[str, Any] = self.parameter_storage_class()
            self.__dict__.update(form=empty, files=empty)
            return
        super()._load_form_data()


class Response(BaseResponse):
    """An HTML page by default (``pages``); ``text`` for the short plain-text answers."""

    default_mimetype = "text/html"

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(text, status, content_type="text/plain; charset=utf-8")

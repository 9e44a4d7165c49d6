"""The multipart/alternative body: text then HTML, UTF-8, quoted-printable, CRLF, lines <= 76 bytes.

Each part arrives as the pieces Jinja yields: the template's literal text and the per-recipient
values. Pieces are encoded one by one and joined with soft line breaks (``=`` CRLF), which decode to
nothing, so the template's literal text, most of the message, is encoded once per campaign.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Iterable

PART_HEAD = 'Content-Type: text/{kind}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
SOFT_BREAK = b"=\r\n"


class AlternativeBody:
    """Builds the body from the parts' pieces; ``literals`` are pieces worth encoding once.

    The boundary starts with ``=_``, which quoted-printable output never contains.
    """

    def __init__(self, literals: Iterable[str] = (), boundary: str = ""):
        """``boundary``: one made before (another process's, for the same campaign); empty: a new one."""
        self.boundary = boundary or "=_broadsheet_" + secrets.token_hex(12)
        delimiter = f"--{self.boundary}\r\n"
        self.content_type = f'multipart/alternative; boundary="{self.boundary}"'
        self._text_head = (delimiter + PART_HEAD.format(kind="plain")).encode("ascii")
        self._html_head = (delimiter + PART_HEAD.format(kind="html")).encode("ascii")
        self._end = f"--{self.boundary}--\r\n".encode("ascii")
        self._encoded = {literal: quoted_printable(literal) for literal in literals if literal}

    def chunks(self, text_pieces: Iterable[str], html_pieces: Iterable[str]) -> list[bytes]:
        """The body as a list of byte strings, to be joined once with what comes before it (the head):
        a message is copied whole once, not once per layer."""
        chunks = [self._text_head]
        self._part(text_pieces, chunks)
        chunks.append(self._html_head)
        self._part(html_pieces, chunks)
        chunks.append(self._end)
        return chunks

    def _part(self, pieces: Iterable[str], chunks: list[bytes]) -> None:
        """The part's encoded pieces, joined by soft line breaks, then the CRLF that belongs to the next
        boundary line, appended to ``chunks``."""
        known = self._encoded
        for piece in pieces:
            if piece:
                chunks += (known.get(piece) or quoted_printable(piece), SOFT_BREAK)
        if chunks[-1] is SOFT_BREAK:
            chunks[-1] = b"\r\n"
        else:
            chunks.append(b"\r\n")


def quoted_printable(content: str) -> bytes:
    """``content`` as UTF-8 quoted-printable with CRLF line ends (no CR or LF stands alone)."""
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" not in content:
        # b2a_qp takes the line end for soft breaks from the first one in the data: here there is none
        return binascii.b2a_qp(content.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return binascii.b2a_qp(content.replace("\n", "\r\n").encode("utf-8"), istext=True)

"""Header values made safe for RFC 5322: no CR/LF from data, RFC 2047 where not ASCII, folded lines."""

from __future__ import annotations

import base64
import re

from ..errors import BroadsheetError

MAX_LINE = 998  # bytes, RFC 5322 2.1.1
FOLD_AT = 78  # preferred line length
WORD_BYTES = 39  # UTF-8 bytes per encoded word: base64 52 + 12 = 64 (RFC 2047: <= 75), "Subject: " + 64 < 78
PLAIN_PHRASE = re.compile("[A-Za-z0-9!#$%&'*+/=?^_`{|}~ \u00a0-\U0010ffff-]*")
LONGEST_QUOTED = 200  # longer display names are encoded, so that they can be folded


class RecipientRejected(BroadsheetError):
    """This one recipient cannot be composed; ``reason`` says why (the rest of the campaign goes on)."""

    def __init__(self, reason: str, *, recipient: str = ""):
        super().__init__(reason, where=recipient or None, fix="correct or remove this subscriber")
        self.reason = reason


def check_single_line(name: str, value: str) -> str:
    """``value`` unchanged, or RecipientRejected when it holds CR, LF or NUL."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise RecipientRejected(f"line break in the {name}")
    return value


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 base64 encoded-words, space separated, each at most 75 characters."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    return " ".join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words)


def _is_plain_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def phrase(name: str, *, encode: bool = True) -> str:
    """A display name: as is, quoted, or (when not ASCII or too long, and ``encode``) encoded-words."""
    if encode and not (_is_plain_ascii(name) and len(name) <= LONGEST_QUOTED):
        return encoded_words(name)
    if PLAIN_PHRASE.fullmatch(name) and "=?" not in name and name.strip() == name:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def address(name: str, addr: str, *, encode: bool = True) -> str:
    """``Name <addr>``, or the bare address without a name."""
    return f"{phrase(name, encode=encode)} <{addr}>" if name else addr


def unstructured(text: str) -> str:
    """An unstructured value such as Subject: as is when plain ASCII, else encoded-words."""
    plain = _is_plain_ascii(text) and len(text) <= LONGEST_QUOTED * 4 and "=?" not in text
    return text if plain else encoded_words(text)


def fold(name: str, value: str) -> bytes:
    """``Name: value`` CRLF-terminated, folded at spaces so lines stay near 78 bytes (at most 998)."""
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT:
        return line.encode("ascii") + b"\r\n"
    first, *words = value.split(" ")
    lines, current = [], f"{name}: {first}"  # never fold straight after the colon
    for word in words:
        if word and len(current) + 1 + len(word) > FOLD_AT:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    if max(map(len, lines)) > MAX_LINE:
        raise RecipientRejected(f"the {name} header is too long")
    return "\r\n".join(lines).encode("ascii") + b"\r\n"

"""One line of `broadsheet doctor`: what was checked, how it stands, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]
GROUPS = ("dns", "credentials", "secret", "public-url", "rates")  # what --only and --skip name


@dataclass(frozen=True)
class Check:
    """``name`` says which check (``dmarc``, ``credentials``), ``what`` what it found; ``fix`` what to do, and
    ``record`` the DNS record to publish (zone-file form) when one is missing or wrong."""

    name: str
    status: Status
    what: str
    fix: str = ""
    record: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def txt_record(name: str, text: str) -> str:
    """A TXT record in zone-file form, its text cut into the 255-byte strings DNS carries."""
    pieces = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
    return f"{name}. TXT {pieces}"

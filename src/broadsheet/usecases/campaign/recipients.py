"""Between the subscriber list and the journal: rows in, Subscribers back out, and the list's fingerprint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from broadsheet.core.audience import Subscriber
from broadsheet.core.audience.csvfile import selection_fingerprint
from broadsheet.data.journal.journal import Row


def campaign_fingerprint(list_path: Path, suppressions: Path | None, segments: Sequence[str]) -> str:
    """What decides who is on the campaign: the list's bytes, the suppressions' bytes, the segments."""
    return selection_fingerprint(list_path, suppressions, segments)


def journal_rows(subscribers: Iterable[Subscriber]) -> Iterator[tuple[str, int, str]]:
    """(email, line, data) per subscriber, data being the JSON the journal keeps to compose again."""
    for chunk in journal_chunks([subscriber] for subscriber in subscribers):
        yield from chunk


def journal_chunks(chunks: Iterable[list[Subscriber]]) -> Iterator[list[tuple[str, int, str]]]:
    """``journal_rows`` a chunk at a time."""
    dumps = _compact_json()
    for chunk in chunks:
        yield [(s.email, s.line, dumps([s.name, s.first_name, s.tags, s.fields])) for s in chunk]


def _compact_json() -> Callable[[object], str]:
    """``json.dumps(…, ensure_ascii=False, separators=(",", ":"))`` without its per-call set-up: the C
    encoder made once (twice as fast for a small list and dict), when this Python has one."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    encode = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


def subscriber_from_row(row: Row) -> Subscriber:
    name, first_name, tags, fields = json.loads(row.data)
    return Subscriber(row.email, name, first_name, tuple(tags), fields, row.line)

"""Between the subscriber list and the journal: rows in, Subscribers back out, and the list's fingerprint."""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from broadsheet.core.audience import Subscriber, SubscriberColumns
from broadsheet.core.audience.csvfile import selection_fingerprint
from broadsheet.data.journal.journal import Row

TAG_LISTS_KEPT = 10_000  # distinct tag lists whose JSON is remembered (most lists repeat a few)
_email, _name, _first_name, _tags, _fields, _line = map(
    operator.attrgetter, ("email", "name", "first_name", "tags", "fields", "line")
)
_quote = json.encoder.encode_basestring  # a JSON string, non-ASCII as it is (as ensure_ascii=False writes it)


def campaign_fingerprint(list_path: Path, suppressions: Path | None, segments: Sequence[str]) -> str:
    """What decides who is on the campaign: the list's bytes, the suppressions' bytes, the segments."""
    return selection_fingerprint(list_path, suppressions, segments)


def journal_rows(subscribers: Iterable[Subscriber]) -> Iterator[tuple[str, int, str]]:
    """(email, line, data) per subscriber, data being the JSON the journal keeps to compose again."""
    for chunk in journal_chunks([subscriber] for subscriber in subscribers):
        yield from chunk


def journal_chunks(chunks: Iterable[list[Subscriber] | SubscriberColumns]) -> Iterator[list[tuple[str, int, str]]]:
    """``journal_rows`` a chunk at a time, a column at a time: the data of each row is
    ``[name, first_name, tags, fields]`` as compact JSON, each distinct tag list encoded once."""
    dumps = _compact_json()
    tags_json: dict[tuple[str, ...], str] = {}
    for chunk in chunks:
        if isinstance(chunk, SubscriberColumns) and len(set(chunk.titles)) < len(chunk.titles):
            chunk = chunk.subscribers()  # a title twice: a fields dict keeps one value
        if isinstance(chunk, SubscriberColumns):
            emails, names, first_names, tags, lines = (
                chunk.emails,
                chunk.names,
                chunk.first_names,
                chunk.tags,
                chunk.lines,
            )
            fields: Iterable[str] = _fields_json(chunk.titles, chunk.extras)
        else:
            emails, names, first_names = (
                list(map(_email, chunk)),
                list(map(_name, chunk)),
                list(map(_first_name, chunk)),
            )
            tags = list(map(tuple, map(_tags, chunk)))  # (a tuple is its own: no copy)
            lines, fields = list(map(_line, chunk)), map(dumps, map(_fields, chunk))
        new = set(tags).difference(tags_json)
        if len(tags_json) + len(new) > TAG_LISTS_KEPT:  # a list of a million tag lists: memory stays flat
            tags_json.clear()
            new = set(tags)
        tags_json.update(zip(new, map(dumps, new), strict=True))
        data = map(
            "[{},{},{},{}]".format,
            map(_quote, names),
            map(_quote, first_names),
            map(tags_json.__getitem__, tags),
            fields,
        )
        yield list(zip(emails, lines, data, strict=True))


def _fields_json(titles: Sequence[str], extras: Sequence[Sequence[str]]) -> Iterable[str]:
    """The JSON of each row's fields dict (``titles`` with its values of ``extras``, a column each), as the
    C encoder writes it: ``{"title":"value",…}``."""
    if not titles:
        return itertools.repeat("{}")
    heads = [("{" if at == 0 else ",") + _quote(title) + ":" for at, title in enumerate(titles)]
    parts: list[Iterable[str]] = []
    for head, values in zip(heads, extras, strict=True):
        parts += [itertools.repeat(head), map(_quote, values)]
    return map("".join, zip(*parts, itertools.repeat("}"), strict=False))  # (the repeats end with the values)


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

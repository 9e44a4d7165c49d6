"""A subscriber row as an import parks it in its staging file: the store's key, the fields and tags as JSON.

Made in the reading thread (or a part's reader process) for every row of a list: kept lean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring as _quote

from broadsheet.core.audience import ListRow, RowProblem

# a staged row; email: NULL when it is the key (lower-cased already: less to sort); tags: {tag_key: tag}
STAGED = ("key", "email", "name", "fields", "status", "tags", "line")
TAG_CACHE = 4_096  # distinct tag lists whose JSON is kept while reading (lists repeat a few tag sets)

StagedRow = tuple[str, str | None, str, str, str, str | None, int]  # STAGED


def staged_chunks(
    chunks: Iterable[list[ListRow | RowProblem]], on_problem: Callable[[RowProblem], None]
) -> Iterator[list[StagedRow]]:
    """The valid rows of each chunk as STAGED tuples (run by the reading thread: keep it lean)."""
    tag_json: dict[tuple[str, ...], str] = {}
    title_json: dict[str, str] = {}  # '"title":' of each column title
    for chunk in chunks:
        staged: list[StagedRow] = []
        for item in chunk:
            if item.__class__ is RowProblem:
                on_problem(item)
                continue
            status, subscriber = item  # type: ignore[misc]
            assert subscriber is not None  # every status is wanted
            email, name, tags = subscriber.email, subscriber.name, subscriber.tags
            fields = []  # the non-empty other columns, and first_name when not the name's first word
            for title, value in subscriber.fields.items():
                if value:
                    head = title_json.get(title) or title_json.setdefault(title, _quote(title) + ":")
                    fields.append(head + _quote(value))
            first_name = subscriber.first_name
            if first_name and first_name != (name.split(None, 1) or ("",))[0]:  # first_word(name), inline
                fields.append('"first_name":' + _quote(first_name))
            tags_json = None
            if tags:
                tags_json = tag_json.get(tags)
                if tags_json is None:
                    if len(tag_json) >= TAG_CACHE:
                        tag_json.clear()
                    tags_json = tag_json[tags] = (
                        "{" + ",".join([f"{_quote(t.casefold())}:{_quote(t)}" for t in tags]) + "}"
                    )
            key = email.lower()
            staged.append(
                (
                    key,
                    None if key == email else email,
                    name,
                    "{" + ",".join(fields) + "}",
                    status,
                    tags_json,
                    subscriber.line,
                )
            )
        yield staged

"""The shared-body form of an API request (SendGrid, Mailgun): one body with per-recipient
placeholders, recovered from finished personalised messages, and the transport base that sends it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from markupsafe import escape

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config

from .base import TransportOptions
from .http import BatchPart, HttpTransport, PartOutcome, api_headers, header, prepared_of

MIN_VALUE_LENGTH = 3  # shorter values ("1", "no") would turn up everywhere in a body
MAX_VALUE_LENGTH = 500  # longer ones stay literal: SendGrid takes 10,000 bytes of substitutions per recipient
_UNSUBSCRIBE_URL = re.compile(r"<([^<>\s]+)>")
_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass
class SharedBody:
    """Messages whose HTML and text are the same once each one's personal values are placeholders."""

    html: str
    text: str
    sender: tuple[str, str]  # From and Reply-To: one request has one of each
    html_names: tuple[str, ...] = ()  # the variables whose placeholders the HTML holds
    text_names: tuple[str, ...] = ()
    members: list[int] = field(default_factory=list)  # positions in the batch
    values: list[dict[str, str]] = field(default_factory=list)  # per member: variable -> exact text

    def render(self, values: dict[str, str], placeholder: Callable[[str], str]) -> tuple[str, str] | None:
        """HTML and text with these values in, as the provider will make them; None if one is missing."""
        if not all(n in values for n in self.html_names) or not all(n in values for n in self.text_names):
            return None
        return _swap_in(self.html, values, self.html_names, placeholder), _swap_in(
            self.text, values, self.text_names, placeholder
        )


def share_bodies(
    messages: Sequence[Message], placeholder: Callable[[str], str], marker: str, *, enabled: bool = True
) -> list[SharedBody]:
    """Group a batch by shared body. ``placeholder(name)`` is the provider's substitution tag and
    contains ``marker``. A message joins a group when the group's body with its values put in is
    exactly its own; otherwise it starts one, its values swapped out of its body (or, when they
    cannot be swapped out and back exactly, its literal body)."""
    groups: list[SharedBody] = []
    for position, message in enumerate(messages):
        values = _swappable(message, marker) if enabled else {}
        group = _matching(groups, message, values, placeholder)
        if group is None:
            group = _new_group(message, values, placeholder)
            groups.append(group)
        group.members.append(position)
        group.values.append({n: values[n] for n in dict.fromkeys((*group.html_names, *group.text_names))})
    return groups


def personal_values(message: Message) -> dict[str, str]:
    """The per-recipient values a body may contain: merge fields, the address, unsubscribe URLs."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    candidates = [*message.merge.items(), ("recipient", message.recipient)]
    candidates += [(f"list_unsubscribe_{n}", url) for n, url in enumerate(_unsubscribe_urls(message), 1)]
    for name, value in candidates:
        if isinstance(value, str) and MIN_VALUE_LENGTH <= len(value) <= MAX_VALUE_LENGTH and value not in seen:
            seen.add(value)
            found[_NAME.sub("_", name)] = value
    return found


def _unsubscribe_urls(message: Message) -> list[str]:
    return _UNSUBSCRIBE_URL.findall(header(message, "List-Unsubscribe"))


def _swappable(message: Message, marker: str) -> dict[str, str]:
    """Personal values and their HTML-escaped forms (``name_html``); none when any of them, or
    the message itself, holds the marker (the provider would substitute inside it)."""
    values = personal_values(message)
    for name, value in list(values.items()):
        escaped = str(escape(value))
        if escaped != value:
            values[name + "_html"] = escaped
    if marker in message.html or marker in message.text or any(marker in v for v in values.values()):
        return {}
    return values


def _matching(
    groups: list[SharedBody], message: Message, values: dict[str, str], placeholder: Callable[[str], str]
) -> SharedBody | None:
    sender = (message.from_header, header(message, "Reply-To"))
    for group in reversed(groups):  # the latest group is the likeliest
        if group.sender == sender and group.render(values, placeholder) == (message.html, message.text):
            return group
    return None


def _new_group(message: Message, values: dict[str, str], placeholder: Callable[[str], str]) -> SharedBody:
    sender = (message.from_header, header(message, "Reply-To"))
    html = _swap_out(message.html, values, placeholder)
    text = _swap_out(message.text, {n: v for n, v in values.items() if not n.endswith("_html")}, placeholder)
    group = SharedBody(html, text, sender, _present(html, values, placeholder), _present(text, values, placeholder))
    if group.render(values, placeholder) != (message.html, message.text):
        return SharedBody(message.html, message.text, sender)
    return group


def _present(body: str, values: dict[str, str], placeholder: Callable[[str], str]) -> tuple[str, ...]:
    return tuple(n for n in values if placeholder(n) in body)


def _swap_out(body: str, values: dict[str, str], placeholder: Callable[[str], str]) -> str:
    for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
        body = body.replace(value, placeholder(name))
    return body


def _swap_in(body: str, values: dict[str, str], names: Sequence[str], placeholder: Callable[[str], str]) -> str:
    for name in names:
        body = body.replace(placeholder(name), values[name])
    return body


def split_headers(messages: Sequence[Message], drop: frozenset[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(headers every message has with the same value, each message's other headers)."""
    all_headers = [api_headers(m, drop) for m in messages]
    first = all_headers[0]
    common = {k: v for k, v in first.items() if all(h.get(k) == v for h in all_headers[1:])}
    own = [{k: v for k, v in h.items() if k not in common} for h in all_headers]
    return common, own


class SharedBodyTransport(HttpTransport):
    """An API that takes one body per request with per-recipient substitutions (SendGrid, Mailgun).

    ``split`` groups the batch by shared body (one request per group, usually one in all);
    ``send_part`` gets ``group_of(messages)`` for the body and each member's values. With
    ``shared_body = False`` every message keeps its literal body (one request per recipient).
    """

    tag: ClassVar[str]  # the provider's substitution tag, "{}" standing for the variable's name
    max_values_bytes: ClassVar[int | None] = None  # the provider's limit on one recipient's values

    def __init__(self, config: Config, options: TransportOptions | None = None):
        super().__init__(config, options)
        self.shared_body = True
        self.marker = self.tag.partition("{}")[0]  # no literal body may contain this

    def placeholder(self, name: str) -> str:
        return self.tag.format(name)

    def split(self, batch: BatchPart) -> list[BatchPart]:
        """One part per shared body, each message prepared with its group and its values."""
        groups = self._groups(batch)
        parts = []
        for group in groups:
            part = batch.subset(group.members)
            part.prepared = [(group, values) for values in group.values]
            parts.append(part)
        return parts

    def _groups(self, messages: Sequence[Message]) -> list[SharedBody]:
        groups = share_bodies(messages, self.placeholder, self.marker, enabled=self.shared_body)
        if self.max_values_bytes is not None:
            groups = self._within_limit(groups, messages)
        return groups

    def _within_limit(self, groups: list[SharedBody], messages: Sequence[Message]) -> list[SharedBody]:
        """Members whose values would pass ``max_values_bytes`` go out with their literal body."""
        kept: list[SharedBody] = []
        for group in groups:
            over = [self._values_bytes(v) > self.max_values_bytes for v in group.values]  # type: ignore[operator]
            if any(over):
                for p in (p for p, too_many in zip(group.members, over, strict=False) if too_many):
                    kept.append(SharedBody(messages[p].html, messages[p].text, group.sender, members=[p], values=[{}]))
                group.members = [p for p, too_many in zip(group.members, over, strict=False) if not too_many]
                group.values = [v for v, too_many in zip(group.values, over, strict=False) if not too_many]
            if group.members:
                kept.append(group)
        return kept

    def _values_bytes(self, values: dict[str, str]) -> int:
        return sum(len(self.placeholder(n).encode()) + len(v.encode()) for n, v in values.items())

    def group_of(self, messages: Sequence[Message]) -> tuple[SharedBody, list[dict[str, str]]]:
        """The shared body of a part (all from one group) and each message's values."""
        known = prepared_of(messages)
        if any(k is None for k in known):  # sent without split(): group them now
            by_position = {p: (g, v) for g in self._groups(messages) for p, v in zip(g.members, g.values, strict=False)}
            known = [by_position[p] for p in range(len(messages))]
        return known[0][0], [k[1] for k in known]

    def bisect(self, messages: Sequence[Message], reason: str) -> PartOutcome:
        """A request refused for a recipient the provider does not name: halve it until found."""
        if len(messages) == 1:
            return PartOutcome({0: self.failed(messages[0], reason)})
        half = len(messages) // 2
        return PartOutcome(again=[list(range(half)), list(range(half, len(messages)))])

"""The one small interface every transport implements (after Django's mail backends)."""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config
from broadsheet.core.errors import TransportError
from broadsheet.core.providers import PROVIDERS

Status = Literal["sent", "failed", "deferred", "unknown"]
Verdict = tuple[Literal["ok", "warn", "fail"], str]  # what ``verify`` found, in a line


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one recipient in one attempt.

    sent: accepted by the server/provider (``message_id`` when it gave one).
    failed: permanently refused; ``detail`` holds the server's code and reason.
    deferred: temporarily refused; retry after ``retry_after`` seconds (or the campaign's backoff).
    unknown: we cannot tell whether it was delivered (timeout after the data went out).
    bounce: for a refusal of this recipient by the receiving side (an SMTP reply to RCPT or to the
    message, a provider's synchronous rejection), ``hard_bounce`` or ``soft_bounce``; else "".
    """

    recipient: str
    status: Status
    detail: str = ""
    message_id: str = ""
    retry_after: float | None = None
    bounce: str = ""


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """What a send tells every transport besides the config (each uses what concerns it)."""

    slug: str = ""  # the issue being sent (the outbox writes under outbox/<slug>/)
    test: bool = False  # a --test copy (the outbox keeps them apart, in <slug>/test/)
    timeout: tuple[float, float] | None = None  # HTTP APIs: (connect, read) seconds; None: their default


class Transport(ABC):
    """Delivers batches of composed messages. One instance per worker; not shared across threads.

    ``send_batch`` returns one Delivery per message, in order. It raises
    ``TransportAuthError`` to stop the campaign (bad credentials, unverified sender) and
    ``TransientTransportError`` when the whole batch should be retried later. A TransportError may
    carry ``.deliveries``: in message order, the settled ones (a request whose answer was lost or
    was not the server's: ``unknown``), None or nothing for those not sent (they stay queued).
    Nothing it raises or returns may contain a secret.
    """

    name: ClassVar[str]
    max_batch: ClassVar[int] = 1  # messages one send_batch call may carry
    secret_env: ClassVar[str] = ""  # the environment variable of its credential (for messages)
    idempotent: ClassVar[bool] = False  # a retried batch is never delivered twice
    raw_only: ClassVar[bool] = False  # reads Message.raw and the envelope, never html or text (left empty by workers)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A transport named in ``broadsheet.core.providers`` takes its batch size and credential from there."""
        super().__init_subclass__(**kwargs)
        provider = PROVIDERS.get(cls.__dict__.get("name", ""))
        if provider is not None:
            cls.max_batch = provider.max_batch
            cls.secret_env = provider.secret_env or ""

    def __init__(self, config: Config, options: TransportOptions | None = None):
        self.config = config
        self.options = options or TransportOptions()

    def open(self) -> None:  # noqa: B027 -- a default: a transport with nothing to open keeps it
        """Open connections or sessions; called before the first batch."""

    def close(self) -> None:  # noqa: B027 -- a default, like open()
        """Close what open() opened; safe to call twice."""

    def verify(self) -> Verdict:
        """Whether the settings and credentials work, by the harmlessest authenticated step the provider has
        (log in, or a documented read): never a message. Raises a TransportError as a send would."""
        with self:
            pass
        return "ok", "connected"

    def send_batch(self, messages: Sequence[Message], *, batch_key: str | None = None) -> list[Delivery]:
        """By default one message at a time through ``send_one``. A TransportError raised part-way
        carries ``.deliveries``, the messages settled before it, for the campaign to record.

        ``batch_key``, when a caller gives one (``send --test`` does; the campaign runner does not), goes
        into an idempotent provider's key with a digest of the payload; other transports ignore it."""
        deliveries: list[Delivery] = []
        try:
            for message in messages:
                deliveries.append(self.send_one(message))
        except TransportError as exc:
            exc.deliveries = deliveries
            raise
        return deliveries

    def send_one(self, message: Message) -> Delivery:
        """Deliver one message; transports that send whole batches override send_batch instead."""
        raise NotImplementedError(f"{type(self).__name__} implements neither send_batch nor send_one")

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

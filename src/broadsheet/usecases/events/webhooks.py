"""Webhooks as django-anymail has them: one adapter module per provider (``checks.Adapter``:
``verify(request, context)`` raising a WebhookError, ``parse(request) -> [MailEvent]``), and
:func:`handle`, which ``broadsheet serve`` calls for ``POST /webhooks/<provider>`` and which applies them.

A request whose signature, credentials or timestamp do not hold is answered 401 and recorded nowhere;
a verified one is normalised and applied through the store (policy.apply), each event once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from broadsheet.core.config import Config, load_config
from broadsheet.core.events import MailEvent, WebhookError
from broadsheet.delivery.webhooks import mailgun, postmark, resend, sendgrid, ses
from broadsheet.delivery.webhooks.checks import Adapter, ReplayGuard, WebhookContext, WebhookRequest

from .matching import journal_lookup
from .policy import apply

if TYPE_CHECKING:
    from broadsheet.data.store import Store

log = logging.getLogger("broadsheet.webhooks")

PROVIDERS: dict[str, Adapter] = {
    "postmark": postmark,
    "sendgrid": sendgrid,
    "mailgun": mailgun,
    "ses": ses,
    "resend": resend,
}
MAX_BODY = 5 * 1024 * 1024  # SendGrid batches are the largest: well under this
REPLAYS = ReplayGuard()  # one per process: a signed token is accepted once


def handle(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    store: Store,
    *,
    config: Config | None = None,
    context: WebhookContext | None = None,
) -> tuple[int, str]:
    """Verify, normalise and apply one webhook request; (HTTP status, short plain-text answer).
    ``config``: the server's own (serve passes it, so ``--config`` holds); without it, the config found
    upward from the store's folder."""
    adapter = PROVIDERS.get(provider)
    if adapter is None:
        return 404, "no webhook for this provider"
    if len(body) > MAX_BODY:
        return 413, "request body too large"
    config = config or project_config(project_root(store))
    context = context or default_context(config)
    try:
        events = verified_events(adapter, headers, body, context)
    except WebhookError as exc:
        log.log(exc.level, "webhook %s not applied (%s): %s", provider, exc.answer, exc)
        return exc.status, exc.answer
    applied = apply(events, store, config.bounces, source="webhook", campaigns=journal_lookup(config))
    return 200, applied.summary()


def verified_events(
    adapter: Adapter, headers: Mapping[str, str], body: bytes, context: WebhookContext
) -> list[MailEvent]:
    """The events of a request ``adapter`` has verified; a WebhookError when it is not to be applied."""
    request = WebhookRequest(headers, body)
    adapter.verify(request, context)
    return adapter.parse(request)


def default_context(config: Config) -> WebhookContext:
    topics = tuple(t.strip() for t in config.bounces.sns_topic_arn.split(",") if t.strip())
    return WebhookContext(sns_topics=topics, replays=REPLAYS)


@functools.lru_cache(maxsize=8)
def project_config(root: Path | None) -> Config:
    """The project's config, read once per process (like serve's own): a change needs a restart."""
    return load_config(start=root)


def project_root(store: Store) -> Path | None:
    """The project folder of a SQLite store at <root>/.broadsheet/audience.db; None for PostgreSQL (no folder)."""
    return Path(store.path).parent.parent if store.engine == "sqlite" else None

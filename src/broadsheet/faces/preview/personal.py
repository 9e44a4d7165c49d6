"""The issue as one subscriber receives it: composed by compose's Composer, for the preview."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer
from broadsheet.core.compose.fields import sample_subscriber
from broadsheet.core.config import SECRET_ENV, Config, weak_secret
from broadsheet.core.render.model import RenderedIssue

PREVIEW_TOKEN = "PREVIEW-TOKEN"


@dataclass(frozen=True)
class PersonalEmail:
    """What one recipient gets: the header block and both parts."""

    subscriber: Subscriber
    from_header: str
    to_header: str
    subject: str
    html: str
    text: str
    unsubscribe_url: str
    headers: dict[str, str] = field(default_factory=dict)  # all but From, To and Subject
    note: str = ""  # why the preview differs from a real send, if it does


def personalise(rendered: RenderedIssue, config: Config, subscriber: Subscriber) -> PersonalEmail:
    """Compose the message for ``subscriber`` exactly as a send would (but never send it).

    Without BROADSHEET_SECRET (or with one too weak for a send) the signed unsubscribe token cannot be
    made: the preview then composes with a placeholder token and says so, rather than refusing to show anything.
    """
    note = ""
    variable = SECRET_ENV["unsubscribe"]
    given = os.environ.get(variable, "")
    if "{token}" in config.unsubscribe_url and (not given or weak_secret(given)):
        config = replace(config, unsubscribe_url=config.unsubscribe_url.replace("{token}", PREVIEW_TOKEN))
        why = "is too weak for a real send" if given else "is not set"
        note = f"{variable} {why}: the unsubscribe link carries a placeholder token ({PREVIEW_TOKEN})"
    composer = Composer(rendered, config)
    message = composer.compose(subscriber)
    return PersonalEmail(
        subscriber=subscriber,
        from_header=message.from_header,
        to_header=message.to_header,
        subject=message.subject,
        html=message.html,
        text=message.text,
        unsubscribe_url=composer.unsubscribe.url(message.recipient),
        headers=dict(message.headers),
        note=note,
    )


__all__ = ["PersonalEmail", "personalise", "sample_subscriber"]

"""What a template sees of one subscriber (``subscriber.*``), for a send, the preview and lint alike."""

from __future__ import annotations

from ..audience import Subscriber, first_word
from ..config import Config
from .headers import check_single_line


def personal_fields(subscriber: Subscriber) -> dict[str, str]:
    """The subscriber's fields with ``email``, ``name`` (one line, or RecipientRejected) and ``first_name``."""
    name = check_single_line("name", subscriber.name)
    return {**subscriber.fields, "email": subscriber.email, "name": name, "first_name": subscriber.first_name}


def sample_subscriber(config: Config) -> Subscriber:
    """The config's ``[preview] sample_subscriber`` as a Subscriber (``first_name`` from ``name``)."""
    values = dict(config.preview.sample_subscriber)
    email = values.get("email", "reader@example.com")
    name = values.get("name", "")
    first_name = values.get("first_name", "") or first_word(name)
    return Subscriber(
        email=email,
        name=name,
        first_name=first_name,
        fields={**values, "email": email, "name": name, "first_name": first_name},
    )

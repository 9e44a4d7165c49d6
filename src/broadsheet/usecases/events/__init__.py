"""Events: what comes back after a send (bounces, complaints, unsubscribes, deliveries), by webhook
(``events.webhooks``), by the providers' APIs (``events.sync``) or by mail (``events.inbox``), normalised
to :class:`MailEvent` and applied to the subscriber store by one policy (``events.policy.apply``)."""

from broadsheet.core.events import KINDS, MailEvent, WebhookMalformed, WebhookNotConfigured, WebhookRejected

from .policy import Applied, apply

__all__ = ["KINDS", "Applied", "MailEvent", "WebhookMalformed", "WebhookNotConfigured", "WebhookRejected", "apply"]

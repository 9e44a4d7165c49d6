"""The confirmation message of a sign-up, themed like the newsletter, made by compose's Composer
and sent through the configured transport (the same pieces a campaign uses)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ..audience import Subscriber
from ..compose import Composer, RecipientRejected
from ..config import Config
from ..errors import BroadsheetError
from ..render.model import RenderedIssue
from ..render.placeholders import PlaceholderTable
from ..tokens import make_token
from ..transports import Transport
from .pages import Pages

CONFIRM_SECONDS = 7 * 24 * 3600  # a confirmation link works for a week


def confirm_token(email: str, nonce: str, config: Config, secret: str, *, issued: int | None = None) -> str:
    """The ``/c/<token>`` token: the address and the store's nonce, with the time it was issued."""
    issued = int(time.time()) if issued is None else issued
    return make_token("confirm", email, config.list_id, secret, extra=f"{nonce}.{issued}")


def confirmation_issue(config: Config, pages: Pages) -> RenderedIssue:
    """The confirmation message as compose expects an issue: Jinja templates whose only personal value
    is ``subscriber.confirm_url`` (brand values from the config are escaped, never executed)."""
    table = PlaceholderTable()
    url = table.make("subscriber.confirm_url")
    subject = pages.texts["mail_subject"].format(list=config.name)
    logo = f"{config.serve.public_url.rstrip('/')}/brand/logo" if pages.brand.logo_file else pages.brand.remote_logo
    html = (
        pages.env.get_template("confirmation_email.html")
        .render(list=config.name, subject=subject, logo_url=logo)
        .replace("CONFIRM_URL", url)
    )
    text = "\n\n".join([pages.texts["mail_intro"].format(list=config.name), url, pages.texts["mail_ignore"]]) + "\n"
    return RenderedIssue(
        slug="confirm",
        title=subject,
        subject=subject,
        preheader="",
        mjml="",
        html=table.to_jinja(html),
        text=table.to_jinja(text),
        web_html="",
        view_online_url="",
    )


class ConfirmationMail:
    """Composes and sends one confirmation message per sign-up. Safe to share between threads."""

    def __init__(self, config: Config, pages: Pages, transport: Callable[[], Transport], secret: str):
        self.config = config
        self.secret = secret
        self.composer = Composer(confirmation_issue(config, pages), config)
        self.transport = transport
        self.base = config.serve.public_url.rstrip("/")

    def send(self, email: str, name: str, nonce: str) -> bool:
        """True when the transport took the message; a failure is reported on stderr, never to the visitor."""
        url = f"{self.base}/c/{confirm_token(email, nonce, self.config, self.secret)}"
        subscriber = Subscriber(
            email=email,
            name=name,
            first_name=name.split(" ")[0] if name else "",
            fields={"email": email, "name": name, "confirm_url": url},
        )
        try:
            message = self.composer.compose(subscriber)
            transport = self.transport()
            transport.open()
            try:
                [delivery] = transport.send_batch([message])
            finally:
                transport.close()
        except (BroadsheetError, RecipientRejected, OSError) as exc:
            print(f"broadsheet serve: confirmation message not sent: {exc}", file=sys.stderr, flush=True)
            return False
        if delivery.status != "sent":
            print(
                f"broadsheet serve: confirmation message {delivery.status}: {delivery.detail}",
                file=sys.stderr,
                flush=True,
            )
        return delivery.status == "sent"

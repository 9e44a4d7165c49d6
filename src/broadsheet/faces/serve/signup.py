"""The confirmation message of a sign-up, themed like the newsletter, made by compose's Composer
and sent through the configured transport (the same pieces a campaign uses), by the thread that applies
the sign-ups kept in the store's intake."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from broadsheet.core.audience import Subscriber, first_word
from broadsheet.core.compose import Composer, RecipientRejected
from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError, StoreError
from broadsheet.core.render.model import RenderedIssue
from broadsheet.core.render.placeholders import PlaceholderTable
from broadsheet.core.tokens import make_token
from broadsheet.data.store import GroupWriter, MailboxLimit, Store
from broadsheet.delivery.transports import Transport

from .pages import Pages

CONFIRM_SECONDS = 7 * 24 * 3600  # a confirmation link works for a week
INTAKE_LIMIT = 1_000  # sign-ups waiting in the store's intake; past that a sign-up is answered 503
DRAIN_BATCH = 100  # sign-ups read from the intake at a time
DRAIN_INTERVAL = 5.0  # seconds between looks at the intake for sign-ups another serve left
DRAIN_SECONDS = 10  # how long stopping serve waits for the mailing thread
# confirmation mails per mailbox, counted in the store, so for every replica sharing it together: nobody's
# inbox is flooded through the form, from many clients or many replicas (each replica also refuses, in its
# own memory, sign-ups past this before they reach the store)
CONFIRMATIONS_PER_MAILBOX = MailboxLimit(per_minute=1, per_hour=3)
UNFINISHED_SECONDS = 3600  # a mailing begun this long ago and not ended: its serve stopped while sending

log = logging.getLogger("broadsheet.faces.serve")


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
    logo = f"{config.serve.public_url.rstrip('/')}/brand/logo" if pages.style.logo_file else pages.style.remote_logo
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


def _not_sent(count: int, why: str) -> None:
    log.error("%d confirmation message(s) not sent: %s", count, why)


class ConfirmationMail:
    """Applies the sign-ups serve answered and sends their confirmation messages, in a thread of its own.
    A request only keeps its sign-up in the store's intake (``post``: one INSERT, committed before the
    answer, the same whatever the address, so no answer tells by its timing who is on the list); this
    thread applies each (``Store.sign_up``: a subscribed or complained address gets no mail) and mails it
    while its mailbox's budget, counted in the store for every replica, allows.
    It also drains, when it starts and every DRAIN_INTERVAL seconds, what a stopped serve or another one
    left, and a slow provider holds no request thread. Safe to share between threads."""

    def __init__(
        self,
        config: Config,
        pages: Pages,
        transport: Callable[[], Transport],
        secret: str,
        store: Callable[[], Store],
        writer: GroupWriter,
    ):  # fmt: skip
        self.config = config
        self.secret = secret
        self.store = store  # the calling thread's Store
        self.writer = writer  # serve's group writer, which commits each request's sign-up
        self.composer = Composer(confirmation_issue(config, pages), config)
        self.transport = transport
        self.base = config.serve.public_url.rstrip("/")
        self._wake = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def post(self, email: str, name: str, *, source: str) -> bool:
        """Keep the sign-up in the store's intake (committed when this returns; StoreError when the store
        stays busy) and wake the mailing thread; False when INTAKE_LIMIT sign-ups wait already."""
        taken = self.writer.submit(
            lambda store: store.take_sign_up(email, name=name, source=source, limit=INTAKE_LIMIT)
        )
        self.start()
        self._wake.set()
        return taken

    def start(self) -> None:
        """Start the mailing thread, which drains the intake at once (nothing once serve began to stop:
        what waits then is kept for the next start)."""
        with self._starting:
            if not self._closed and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="confirmations", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Let the mailing thread drain the intake (for up to DRAIN_SECONDS), then stop it; what it could
        not mail by then stays in the intake for serve's next start."""
        with self._starting:
            self._closed = True
            thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._wake.set()
        thread.join(DRAIN_SECONDS)
        if thread.is_alive():
            log.warning(
                "confirmations still being sent after %d s; those not sent yet wait in the subscriber store for"
                " serve's next start",
                DRAIN_SECONDS,
            )

    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # the next round tries again
                log.exception("sign-ups not applied")
            if self._closed:
                return
            self._wake.wait(DRAIN_INTERVAL)

    def drain(self) -> None:
        """Apply and mail every sign-up waiting in the intake (none when there is no store yet)."""
        if not Store.exists_for_config(self.config):
            return
        store = self.store()
        dropped = store.drop_unfinished_mailings(UNFINISHED_SECONDS)
        if dropped:
            _not_sent(dropped, "serve stopped while sending them, so whether they left is unknown (not sent again)")
        while waiting := store.waiting_sign_ups(DRAIN_BATCH):
            for one in waiting:
                try:
                    nonce = store.sign_up_waiting(one, per_mailbox=CONFIRMATIONS_PER_MAILBOX)
                except StoreError as exc:  # busy: the next round tries again; invalid: dropped
                    log.error("sign-up not applied: %s", exc)
                    return
                if nonce is None:
                    continue
                try:
                    self.send(one.email, one.name, nonce)
                except Exception:  # one message's surprise must not silence the sign-ups after it
                    log.exception("confirmation message not sent")
                finally:
                    store.drop_sign_up(one.id)

    def send(self, email: str, name: str, nonce: str) -> bool:
        """True when the transport took the message; a failure is logged, never shown to the visitor."""
        url = f"{self.base}/c/{confirm_token(email, nonce, self.config, self.secret)}"
        subscriber = Subscriber(
            email=email,
            name=name,
            first_name=first_word(name),
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
            log.error("confirmation message not sent: %s", exc)
            return False
        if delivery.status != "sent":
            log.error("confirmation message %s: %s", delivery.status, delivery.detail)
        return delivery.status == "sent"

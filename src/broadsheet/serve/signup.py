"""The confirmation message of a sign-up, themed like the newsletter, made by compose's Composer
and sent through the configured transport (the same pieces a campaign uses)."""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable

from ..audience import Subscriber, first_word
from ..compose import Composer, RecipientRejected
from ..config import Config
from ..errors import BroadsheetError
from ..render.model import RenderedIssue
from ..render.placeholders import PlaceholderTable
from ..store import Store
from ..tokens import make_token
from ..transports import Transport
from .pages import Pages

CONFIRM_SECONDS = 7 * 24 * 3600  # a confirmation link works for a week
WAITING_MAILS = 1_000  # confirmations waiting to be sent; past that a sign-up is answered but not mailed
DRAIN_SECONDS = 10  # how long stopping serve waits for the confirmations still waiting


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


def _not_sent(count: int, why: str) -> None:
    print(f"broadsheet serve: {count} confirmation message(s) not sent: {why}", file=sys.stderr, flush=True)


class ConfirmationMail:
    """Records each sign-up in the store and sends its confirmation message, in a thread of its own
    (``post``): the answer to a visitor does the same work whatever the address is (a new one is written,
    a subscribed or complained one is not, and gets no mail: an answer that came back sooner would tell
    who is on the list), and a slow provider holds no request thread. Safe to share between threads."""

    def __init__(
        self, config: Config, pages: Pages, transport: Callable[[], Transport], secret: str, store: Callable[[], Store]
    ):
        self.config = config
        self.secret = secret
        self.store = store  # the calling thread's Store
        self.composer = Composer(confirmation_issue(config, pages), config)
        self.transport = transport
        self.base = config.serve.public_url.rstrip("/")
        self._waiting: queue.Queue[tuple[str, str, str] | None] = queue.Queue(WAITING_MAILS)  # email, name, source
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def post(self, email: str, name: str, *, source: str) -> None:
        """Have the sign-up recorded and its confirmation sent soon, by the mailing thread (started on first use)."""
        with self._starting:
            if self._closed:  # a request that ended after serve began to stop
                _not_sent(1, "serve is stopping")
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="confirmations", daemon=True)
                self._thread.start()
        try:
            self._waiting.put_nowait((email, name, source))
        except queue.Full:
            _not_sent(1, "too many waiting")

    def close(self) -> None:
        """Send what is waiting (for up to DRAIN_SECONDS), then stop the mailing thread; what could not be
        sent by then is counted on stderr (those readers sign up again: their link never left)."""
        with self._starting:
            self._closed = True
            thread = self._thread
        if thread is None or not thread.is_alive():
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            self._waiting.put(None, timeout=DRAIN_SECONDS)
        except queue.Full:
            pass
        thread.join(max(0.0, deadline - time.monotonic()))
        left = sum(1 for waiting in list(self._waiting.queue) if waiting is not None)
        if thread.is_alive() or left:
            _not_sent(
                left + (1 if thread.is_alive() else 0), f"serve stopped before they went (after {DRAIN_SECONDS} s)"
            )

    def _run(self) -> None:
        while (waiting := self._waiting.get()) is not None:
            try:
                self.sign_up(*waiting)
            except Exception:  # one message's surprise must not silence the sign-ups after it
                print(f"broadsheet serve: confirmation message not sent:\n{traceback.format_exc()}", file=sys.stderr,
                      flush=True)  # fmt: skip

    def sign_up(self, email: str, name: str, source: str) -> bool:
        """Record the sign-up (``Store.sign_up``) and mail its confirmation when one is due; True when sent."""
        try:
            nonce = self.store().sign_up(email, name=name, source=source)
        except BroadsheetError as exc:
            print(f"broadsheet serve: sign-up not recorded: {exc}", file=sys.stderr, flush=True)
            return False
        return nonce is not None and self.send(email, name, nonce)

    def send(self, email: str, name: str, nonce: str) -> bool:
        """True when the transport took the message; a failure is reported on stderr, never to the visitor."""
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
            print(f"broadsheet serve: confirmation message not sent: {exc}", file=sys.stderr, flush=True)
            return False
        if delivery.status != "sent":
            print(
                f"broadsheet serve: confirmation message {delivery.status}: {delivery.detail}",
                file=sys.stderr,
                flush=True,
            )
        return delivery.status == "sent"

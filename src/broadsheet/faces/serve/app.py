"""The WSGI application of `broadsheet serve`: routing, and what each public endpoint does.

    make_app(config, transport=...) -> WSGI callable, run by waitress (see broadsheet.faces.commands.serve)

Every answer passes the Host allow-list and carries the security headers; every state change a reader
makes goes through the store's group writer (one thread committing many requests' writes in one
transaction) and is committed before the answer leaves (a sign-up as a row of the store's intake, the same
whatever the address, which the mailing thread applies). Reads use one Store per server thread.
Nothing here lists or exports subscribers.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, Map, MapAdapter, RequestRedirect, Rule
from werkzeug.security import safe_join

from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress, mailbox_of
from broadsheet.core.compose.unsubscribe import PROBE_ADDRESS
from broadsheet.core.config import Config
from broadsheet.core.errors import ConfigError, StoreError
from broadsheet.core.providers import delivers
from broadsheet.core.tokens import TokenData, read_click_token, read_token, token_secrets
from broadsheet.data.db.checkpoint import Checkpointer, without_autocheckpoint
from broadsheet.data.store import GroupWriter, Store, StoredSubscriber, Suppression, store_location, store_path
from broadsheet.delivery.transports import Transport

from .clicks import ClickRecorder
from .http import Request, Response
from .pages import Pages, mask_address
from .security import FormGuard, RateLimit, allowed_hosts, origin_of, security_headers
from .signup import CONFIRM_SECONDS, CONFIRMATIONS_PER_MAILBOX, ConfirmationMail

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("broadsheet.faces.serve")
# one-click POSTs per minute and per hour: a link's own (a provider posts it once, a reader may click twice),
# and a client's (a mail provider's server posts its users' one-clicks, so far more than sign-ups)
ONE_CLICKS_PER_ADDRESS = (3, 20)
ONE_CLICKS_PER_CLIENT = (120, 2400)
RESTART_FRAMES = 16384  # the store's WAL (64 MiB of pages) is started over past this length, once all moved
WEBHOOK_MAX_BYTES = 4 * 1024 * 1024  # provider batches (SendGrid posts up to a thousand events at once)
TOKEN_PATH = re.compile(r"/([ucr])/([A-Za-z0-9_-]{1,700})\Z")  # for the log: tokens name subscribers
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # every character a URL may hold as it is (RFC 3986)
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
PLAIN_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}  # answers other than pages
CLICK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,700}")
# RFC 8058's one-click body, as every mail provider posts it urlencoded: recognised by its exact bytes
ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
ONE_CLICK_TYPE = "application/x-www-form-urlencoded"
CLICK_HEADERS = (("Cache-Control", "no-store"), ("Content-Length", "0"), *PLAIN_HEADERS.items())
Answer = tuple[str, list[tuple[str, str]], bytes]  # a WSGI answer made whole: status, headers, body


@dataclass(frozen=True)
class TopicChoice:
    """A topic as the unsubscribe page offers it: its tag, its label, and whether the reader left it."""

    tag: str
    label: str
    left: bool


class TokenPart(BaseConverter):
    """A token in a path: base64url, never a slash or a newline."""

    regex = r"[A-Za-z0-9_-]{1,700}"


class ProviderPart(BaseConverter):
    """A webhook provider's name in a path."""

    regex = r"[a-z0-9-]{1,40}"


class App:
    """The WSGI callable; shared by every waitress thread."""

    def __init__(
        self, config: Config, transport: Callable[[], Transport], *, secrets: tuple[str, ...] | None = None,
        transport_name: str = "",
    ):  # fmt: skip
        """``transport_name``: what ``transport`` makes, told in the log at start ("" when not known)."""
        if not config.serve.public_url:
            raise ConfigError(
                "[serve] public_url is not set",
                where=config.where("serve.public_url"),
                fix='add [serve] public_url = "https://news.example.org" (where readers reach serve)',
            )
        self.config = config
        self.transport_name = transport_name
        self.secrets = secrets or token_secrets()
        self.list_id = config.list_id
        self.topics = {tag.casefold(): (tag, label) for tag, label in config.topics.items()}  # key -> (tag, label)
        self.pages = Pages(config)
        self.hosts = allowed_hosts(config.serve.public_url)
        origins = frozenset(origin_of(url) for url in (config.serve.public_url, *config.serve.form_origins))
        self.guard = FormGuard(
            config.list_id, self.secrets, origins, secure=config.serve.public_url.startswith("https://")
        )
        self.signups = RateLimit(config.serve.signups_per_minute, config.serve.signups_per_hour)
        # the store counts a mailbox's confirmations for every replica (``ConfirmationMail``); each replica
        # also refuses past them in memory, so that one mailbox's flood never fills the intake
        limit = CONFIRMATIONS_PER_MAILBOX
        self.mails_per_address = RateLimit(limit.per_minute, limit.per_hour)
        self.one_clicks = RateLimit(ONE_CLICKS_PER_CLIENT[0], ONE_CLICKS_PER_CLIENT[1])
        self.one_clicks_per_address = RateLimit(ONE_CLICKS_PER_ADDRESS[0], ONE_CLICKS_PER_ADDRESS[1])
        self.headers = security_headers(self.pages.style_hash)
        self.local = threading.local()
        self.checkpointer = Checkpointer(store_path(config.root), restart_frames=RESTART_FRAMES)
        self.writer = GroupWriter(store_location(config), opened=self.opened)
        self.mail = ConfirmationMail(
            config, self.pages, transport, self.secrets[0], store=lambda: self.store, writer=self.writer
        )
        self.addresses = AddressChecker()
        self.site = config.root / "site"
        self.clicks = ClickRecorder(lambda: self.store)
        self.routes, self.endpoints = self.routing()
        post: WSGIEnvironment = {"REQUEST_METHOD": "POST"}  # all that finish reads
        self.unsubscribed = self.finish(one_click_answer(True), post)  # one-clicks' answers, made once
        self.refused = self.finish(one_click_answer(False), post)
        self.failed = self.finish(self.pages.message(500, "error_title", "error_text"), post)

    def start(self) -> None:
        """Before the first request: the log says what sends confirmations; the mailing thread applies the
        sign-ups a stopped serve left; the store's writer and the clicks thread start."""
        self.say_transport()
        self.writer.start()
        self.mail.start()
        self.clicks.start()

    def say_transport(self) -> None:
        """Which transport sends the confirmation messages; a warning when it mails no one (the outbox)."""
        name = self.transport_name
        if not name:
            return
        if delivers(name):
            log.info("confirmation messages are sent through %s ([send] transport)", name)
            return
        outbox = self.config.resolve(self.config.send.outbox_dir)
        log.warning(
            "confirmation messages go to the %s (%s): nobody who signs up will receive one; set [send] "
            "transport to smtp or a provider for serve", name, outbox,
        )  # fmt: skip

    def close(self) -> None:
        """Commit the changes still queued (a request waiting for one is answered only once it is
        recorded), send the confirmations still waiting, then stop the checkpoint thread after its last
        checkpoint (the server has stopped taking requests)."""
        try:
            self.writer.close()
            self.mail.close()
            self.clicks.close()
        finally:
            self.checkpointer.stop()

    # -- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/r/") and (location := self.fast_click(environ, path[3:])) is not None:
            start_response("302 Found", [("Location", location), *CLICK_HEADERS])  # the busiest path: no werkzeug
            return [b""]
        if path.startswith("/u/") and (answer := self.fast_one_click(environ, path[3:])) is not None:
            if answer is UNSUBSCRIBED:  # the busiest answer: made once (``one_click_answer``)
                status, headers, body = self.unsubscribed
                start_response(status, list(headers))
                return [body]
            response = answer  # a provider's one-click: no form to parse
        else:
            response = self.answer(environ)
        status, headers, body = self.finish(response, environ)
        start_response(status, headers)
        return [body]  # one piece: waitress sends it with the headers, in one write

    def finish(self, response: Response, environ: WSGIEnvironment) -> Answer:
        """The status, headers (the security headers added) and body of ``response``."""
        app_iter, status, headers = response.get_wsgi_response(environ)
        present = {
            name.lower() for name, _ in headers
        }  # a plain set: a werkzeug Headers look-up of a name it lacks raises
        own_policy = "content-security-policy" in present
        defaults = self.headers if response.mimetype == "text/html" and not own_policy else PLAIN_HEADERS
        headers += [(name, value) for name, value in defaults.items() if name.lower() not in present]
        return status, headers, b"".join(app_iter)

    def answer(self, environ: WSGIEnvironment) -> Response:
        if (environ.get("HTTP_HOST") or "").lower() not in self.hosts:
            return Response.text(421, "unknown host\n")
        path = environ.get("PATH_INFO", "/")
        request = Request(
            environ, WEBHOOK_MAX_BYTES if path.startswith("/webhooks/") else self.config.serve.max_body_bytes
        )
        try:
            if request.too_large():
                raise RequestEntityTooLarge
            return self.route(request)
        except RequestEntityTooLarge:  # the declared length, or a form over its limits
            return self.pages.message(413, "too_large_title")
        except Exception:
            log.exception("%s %s failed", request.method, _path_for_log(request.path))
            return self.pages.message(500, "error_title", "error_text")

    def route(self, request: Request) -> Response:
        """The endpoint of the request's path and method (a site/ file for any other GET); a path routes
        only as written: no trailing slash or newline variant, and never a redirect (waitress, like werkzeug,
        reads a path's leading slashes as one)."""
        path = request.path
        if path == "/" and request.method in ("GET", "HEAD") and (index := self.site_file(path)) is not None:
            return _file(index)
        try:
            endpoint, values = self.routes.match(path, request.method)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            return Response(b"", 405, {"Allow": allowed}, content_type="text/plain; charset=utf-8")
        except (NotFound, RequestRedirect):
            if request.method in ("GET", "HEAD") and (found := self.site_file(path)) is not None:
                return _file(found)
            return self.pages.message(404, "not_found_title")
        return self.endpoints[endpoint](request, **values)

    def routing(self) -> tuple[MapAdapter, dict[str, Callable[..., Response]]]:
        """The URL map (strict: werkzeug's redirects and slash merging off) and its endpoints."""
        logo = self.pages.style.logo_file
        endpoints: dict[str, Callable[..., Response]] = {
            "unsubscribe_page": self.unsubscribe_page,
            "unsubscribe": self.unsubscribe,
            "confirm_page": self.confirm_page,
            "confirm": self.confirm,
            "subscribe_form": self.subscribe_form,
            "subscribe": self.subscribe,
            "unsubscribe_help": lambda request: self.pages.message(200, "unsubscribe_title", "web_unsubscribe_text"),
            "webhook": self.webhook,
            "logo": lambda request: _file(logo) if logo else self.pages.message(404, "not_found_title"),
            "healthz": lambda request: Response.text(200, "ok\n"),
            "click": self.click,
        }
        get, post = ("GET",), ("POST",)  # werkzeug adds HEAD to GET
        rules = [
            Rule("/u/<token:token>", endpoint="unsubscribe_page", methods=get),
            Rule("/u/<token:token>", endpoint="unsubscribe", methods=post),
            Rule("/c/<token:token>", endpoint="confirm_page", methods=get),
            Rule("/c/<token:token>", endpoint="confirm", methods=post),
            *(Rule(path, endpoint="subscribe_form", methods=get) for path in ("/", "/subscribe")),
            *(Rule(path, endpoint="subscribe", methods=post) for path in ("/", "/subscribe")),
            *(Rule(path, endpoint="unsubscribe_help") for path in ("/u", "/u/")),
            Rule("/webhooks/<provider:provider>", endpoint="webhook", methods=post),
            *([Rule("/brand/logo", endpoint="logo", methods=get)] if logo else []),
            Rule("/healthz", endpoint="healthz", methods=get),
            Rule("/r/<token:token>", endpoint="click", methods=get),
        ]
        urls = Map(
            rules,
            converters={"token": TokenPart, "provider": ProviderPart},
            strict_slashes=True,
            merge_slashes=False,
            redirect_defaults=False,
        )
        return urls.bind("localhost"), endpoints

    @property
    def store(self) -> Store:
        """This thread's Store (its connection is not shared between threads)."""
        store = getattr(self.local, "store", None)
        if store is None:
            store = self.local.store = Store.for_config(self.config)
            self.opened(store)
        return store

    def opened(self, store: Store) -> None:
        """A Store of serve's, just opened: SQLite's checkpoints run in their own thread, not inside a request."""
        if store.engine == "sqlite":
            without_autocheckpoint(store.db)
            self.checkpointer.start()

    # -- unsubscribe ----------------------------------------------------------------------------

    def unsubscribe_page(self, request: Request, token: str) -> Response:
        """The page behind the link: which address and list, and a button. A GET never unsubscribes;
        a reader already unsubscribed is told so and offered to resubscribe."""
        data = self.read("unsubscribe", token)
        if data is None:
            return self.pages.message(400, "bad_link_title", "bad_link_text")
        current = self.store.get(data.email)
        if current is not None and current.status == "unsubscribed":
            return self.form_page(request, "unsubscribed.html", address=mask_address(data.email))
        return self.form_page(
            request, "unsubscribe.html", address=mask_address(data.email), topics=self.topics_of(current)
        )

    def topics_of(self, subscriber: StoredSubscriber | None) -> list[TopicChoice]:
        """The configured topics the subscriber is tagged with, in the config's order, and whether they left each."""
        if subscriber is None or not self.topics:
            return []
        tagged = {tag.casefold() for tag in subscriber.tags}
        left = self.store.left_topics(subscriber.email)
        return [TopicChoice(tag, label, key in left) for key, (tag, label) in self.topics.items() if key in tagged]

    def unsubscribe(self, request: Request, token: str) -> Response:
        """RFC 8058 one-click (the token is the authentication), or the page's own buttons."""
        data = self.read("unsubscribe", token)
        form = request.form
        if data is None:
            return self.pages.message(400, "bad_link_title", "bad_link_text")
        if form.get("List-Unsubscribe") == "One-Click":
            return one_click_answer(self.one_click(data, request.remote_addr or ""))
        if not self.form_allowed(request, form):
            return self.pages.message(403, "forbidden_title", "forbidden_text")
        address = mask_address(data.email)
        if form.get("action") == "unsubscribe":
            self.leave(data.email, "unsubscribe-page", campaign=data.extra)
            return self.form_page(request, "unsubscribed.html", address=address)
        if form.get("action") == "resubscribe":
            return self.resubscribe(data.email, address)
        if form.get("action") in ("leave-topic", "join-topic"):
            return self.choose_topic(request, data, form.get("topic", ""), leave=form.get("action") == "leave-topic")
        return self.pages.message(400, "bad_link_title", "bad_link_text")

    def choose_topic(self, request: Request, data: TokenData, topic: str, *, leave: bool) -> Response:
        """Leave (or rejoin) one configured topic; the page confirms and offers the way back. The same answer
        whatever the address's state (the store records nothing for one it does not know); any topic not in
        ``[topics]`` is refused."""
        found = self.topics.get(topic.strip().casefold())
        if found is None:
            return self.pages.message(400, "bad_topic_title", "bad_topic_text")
        tag, label = found
        self.writer.submit(
            lambda store: store.choose_topic(
                data.email, tag, leave=leave, source="unsubscribe-page", campaign=data.extra
            )
        )
        return self.form_page(
            request, "topic.html", address=mask_address(data.email), topic=TopicChoice(tag, label, leave)
        )

    def leave(self, email: str, source: str, *, campaign: str = "") -> None:
        """Unsubscribe the address in one conditional write: a repeat (already unsubscribed, bounced or
        complained), or a duplicate at the same moment, records nothing. ``campaign``: the issue whose
        link it was (the token names it; links sent before it did name none). Returns once committed."""
        self.writer.gather(Store.suppress_all, leaving(email, source, campaign))

    def resubscribe(self, email: str, address: str) -> Response:
        """Back to subscribed through a confirmation mailed to the address, as a sign-up (the link in an
        issue never expires, and travels: forwarded, archived, quoted, it must not be enough), and only
        from unsubscribed (never over a bounce or a complaint)."""
        current = self.store.get(email)
        if current is None or current.status not in ("unsubscribed", "subscribed"):
            return self.pages.message(409, "error_title", "error_text")
        if (
            current.status == "unsubscribed"
            and self.mails_per_address.allow(mailbox_of(email))
            and not self.take_sign_up(email, current.name, source="unsubscribe-page")
        ):
            return self.pages.message(503, "error_title", "error_text")
        return self.pages.message(200, "check_inbox_title", "check_inbox_text", address=address, list=self.config.name)

    def form_page(
        self, request: Request, template: str, status: int = 200, *, action: str = "", **values: object
    ) -> Response:
        """A page with a form posting to ``action`` (default: this page), protected by FormGuard."""
        action = action or request.path
        nonce = self.guard.nonce(request.headers.get("Cookie"))
        response = self.pages.render(template, status, action=action, form=self.guard.token(action, nonce), **values)
        response.headers["Set-Cookie"] = self.guard.cookie(nonce)
        return response

    def log_refused_origin(self, origin: str | None) -> None:
        """A sign-up refused because the page it came from is not one of ours: the log names the origin and
        the configuration line that would allow it (a form pasted on a site not yet listed)."""
        if origin is None or origin == "null" or self.guard.origin_ok(origin):
            return
        shown = CONTROL.sub("?", origin).replace('"', "?")[:200]
        listed = [*self.config.serve.form_origins, shown]
        line = "form_origins = [" + ", ".join(f'"{value}"' for value in listed) + "]"
        log.warning(
            "sign-up refused: the form was posted from %s, which [serve] form_origins does not list; "
            "if that is your site, add it to %s: %s", shown, self.config.where("serve.form_origins"), line,
        )  # fmt: skip

    def form_allowed(
        self, request: Request, form: Mapping[str, str], *, action: str = "", origin_suffices: bool = False
    ) -> bool:
        return self.guard.allows(
            action or request.path,
            form,
            request.headers.get("Origin"),
            request.headers.get("Cookie"),
            origin_suffices=origin_suffices,
        )

    # -- sign-up and confirmation ---------------------------------------------------------------

    def subscribe_form(
        self, request: Request, *, status: int = 200, error: str = "", email: str = "", name: str = ""
    ) -> Response:
        return self.form_page(
            request, "subscribe.html", status, action="/subscribe", error=error, email=email, name=name
        )

    def subscribe(self, request: Request) -> Response:
        """Have the address recorded as unconfirmed and mailed a confirmation link, after the answer: the same
        page, from the same work, for every address (nothing here depends on its state)."""
        form = request.form
        if not self.form_allowed(request, form, action="/subscribe", origin_suffices=True):
            self.log_refused_origin(request.headers.get("Origin"))
            return self.pages.message(403, "forbidden_title", "forbidden_text")
        if not self.signups.allow(request.remote_addr or ""):
            return self.pages.message(429, "too_many_title", "too_many_text")
        typed = form.get("email", "").strip()[:254]
        name = CONTROL.sub(" ", form.get("name", "")).strip()[:200]
        try:
            email = self.addresses.normalise(typed)
        except InvalidAddress:
            return self.subscribe_form(request, status=400, error="invalid_address", email=typed, name=name)
        # the honeypot (only robots fill it in), then at most a few confirmations per address: a new
        # sign-up replaces the nonce, so one refused here must not reach the store either
        if (
            not form.get("website")
            and self.mails_per_address.allow(mailbox_of(email))
            and not self.take_sign_up(email, name, source="form")
        ):
            return self.pages.message(503, "error_title", "error_text")
        return self.pages.message(200, "check_inbox_title", "check_inbox_text", address=email, list=self.config.name)

    def take_sign_up(self, email: str, name: str, *, source: str) -> bool:
        """Keep the sign-up in the store's intake, committed before the answer; False (answer 503) when the
        store stayed busy or the intake is full: the same work, and answer, whatever the address."""
        try:
            if self.mail.post(email, name, source=source):
                return True
            log.warning("sign-up not taken: too many wait to be mailed")
        except StoreError as exc:
            log.error("sign-up not taken: %s", exc)
        return False

    def confirm_page(self, request: Request, token: str) -> Response:
        data = self.confirmation(token)
        if isinstance(data, Response):
            return data
        return self.form_page(request, "confirm.html", address=mask_address(data.email))

    def confirm(self, request: Request, token: str) -> Response:
        if not self.form_allowed(request, request.form):
            return self.pages.message(403, "forbidden_title", "forbidden_text")
        data = self.confirmation(token)
        if isinstance(data, Response):
            return data
        nonce = data.extra.partition(".")[0]
        if not self.writer.submit(lambda store: store.confirm(data.email, nonce)):
            return self.pages.message(410, "expired_title", "expired_text")
        return self.pages.message(
            200, "confirmed_title", "confirmed_text", address=mask_address(data.email), list=self.config.name
        )

    def confirmation(self, token: str) -> TokenData | Response:
        """The token's data, or the page to answer instead (bad link, expired)."""
        data = self.read("confirm", token)
        nonce, _, issued = data.extra.rpartition(".") if data else ("", "", "")
        if data is None or not nonce or not issued.isdigit():
            return self.pages.message(400, "bad_link_title", "bad_link_text")
        if not 0 <= time.time() - int(issued) <= CONFIRM_SECONDS:
            return self.pages.message(410, "expired_title", "expired_text")
        return data

    # -- counted links --------------------------------------------------------------------------

    def click(self, request: Request, token: str) -> Response:
        """A counted link whose token does not verify (``fast_click`` answered every other): redirects
        nowhere."""
        return self.pages.message(404, "not_found_title")

    def fast_click(self, environ: WSGIEnvironment, token: str) -> str | None:
        """The redirect of a counted link (the address sealed in its token, never one from the request),
        with the click recorded; None for anything else, which the routing answers (404)."""
        method = environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD") or (environ.get("HTTP_HOST") or "").lower() not in self.hosts:
            return None
        link = read_click_token(token, self.list_id, self.secrets) if CLICK_TOKEN.fullmatch(token) else None
        if link is None or not link.url.startswith(("http://", "https://")) or CONTROL.search(link.url):
            return None
        self.clicks.record(link, environ.get("REMOTE_ADDR", ""), environ.get("HTTP_USER_AGENT", ""), method)
        return quote(link.url, safe=URL_SAFE)  # an address with non-ASCII letters, percent-encoded

    def fast_one_click(self, environ: WSGIEnvironment, token: str) -> Response | None:
        """A one-click whose body is exactly RFC 8058's urlencoded one, answered as ``unsubscribe`` answers it
        without werkzeug's request and form parsing (the providers' one-clicks come in bursts); None for
        anything else, which the routing answers (the body read here is handed back)."""
        if not self.is_one_click(
            environ.get("REQUEST_METHOD", ""), environ.get("CONTENT_LENGTH"), environ.get("CONTENT_TYPE", ""),
            environ.get("HTTP_HOST") or "", token,
        ):  # fmt: skip
            return None
        body = environ["wsgi.input"].read(len(ONE_CLICK_BODY))
        data = self.read("unsubscribe", token) if body == ONE_CLICK_BODY else None
        if data is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        try:
            return UNSUBSCRIBED if self.one_click(data, environ.get("REMOTE_ADDR") or "") else one_click_answer(False)
        except Exception:
            log.exception("POST %s failed", _path_for_log(environ.get("PATH_INFO", "")))
            return self.pages.message(500, "error_title", "error_text")

    def is_one_click(self, method: str, length: str | None, kind: str, host: str, token: str) -> bool:
        """A request shaped as RFC 8058's urlencoded one-click to one of our hosts (its body and its token
        still to be read)."""
        return (
            method == "POST"
            and length == str(len(ONE_CLICK_BODY))
            and kind.partition(";")[0].strip().lower() == ONE_CLICK_TYPE
            and host.lower() in self.hosts
            and CLICK_TOKEN.fullmatch(token) is not None
        )

    def post_one_click(self, token: str, body: bytes, client: str, answer: Callable[[Answer], None]) -> bool:
        """``fast_one_click`` for an event loop (broadsheet.faces.serve.loop), with no thread waiting: the
        one-click is handed to the store's writer, and ``answer`` gets its answer once it is committed (in
        the writer's thread; at once when refused or the probe). False, with nothing done, for anything but
        a one-click whose token verifies (the WSGI app answers it, as always)."""
        data = self.read("unsubscribe", token) if body == ONE_CLICK_BODY else None
        if data is None:
            return False
        if not self.allowed(data, client):
            answer(self.refused)
        elif data.email == PROBE_ADDRESS:
            answer(self.unsubscribed)
        else:

            def recorded(_result: object, error: BaseException | None) -> None:
                if error is not None:
                    log.error("POST /u/… failed: %s", error)
                answer(self.failed if error is not None else self.unsubscribed)

            try:
                self.writer.post(Store.suppress_all, leaving(data.email, "one-click", data.extra), recorded)
            except StoreError as exc:  # serve is stopping
                recorded(None, exc)
        return True

    def allowed(self, data: TokenData, client: str) -> bool:
        """A one-click within both rate limits (counted), the client's and its link's."""
        return self.one_clicks.allow(client) and self.one_clicks_per_address.allow(data.email.lower())

    def one_click(self, data: TokenData, client: str) -> bool:
        """RFC 8058: the token is the authentication; the same answer whatever the address's state. False
        when a rate limit refuses it (answered 429), True once it is recorded (200)."""
        if not self.allowed(data, client):
            return False
        if data.email != PROBE_ADDRESS:  # broadsheet doctor's test token: answered, nothing recorded
            self.leave(data.email, "one-click", campaign=data.extra)
        return True

    # -- the rest -------------------------------------------------------------------------------

    def webhook(self, request: Request, provider: str) -> Response:
        """Delivery events from a provider, handed to broadsheet.usecases.events when that package exists."""
        try:
            from broadsheet.usecases.events import webhooks
        except ModuleNotFoundError as exc:
            if exc.name not in ("broadsheet.usecases.events", "broadsheet.usecases.events.webhooks"):
                raise
            return Response.text(404, "no webhooks here\n")
        status, text = webhooks.handle(
            provider, dict(request.headers), request.get_data(), self.store, config=self.config
        )
        return Response.text(status, text if text.endswith("\n") else text + "\n")

    def read(self, purpose: str, token: str) -> TokenData | None:
        return read_token(purpose, token, self.list_id, self.secrets)

    def site_file(self, path: str) -> Path | None:
        """A file of the project's ``site/`` folder (a static archive), never outside it."""
        joined = safe_join(str(self.site), path.lstrip("/")) if "\x00" not in path else None
        if joined is None or not self.site.is_dir():  # None: a path that leaves the folder
            return None
        root = self.site.resolve()
        candidate = Path(joined).resolve()  # a symlink, followed: still inside, and not to a hidden file
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not (candidate.is_file() and candidate.is_relative_to(root)):
            return None
        # .git, .env, .broadsheet-site: never published, whatever the folder holds (asked for, or linked to)
        hidden = (
            part.startswith(".") and part != ".well-known"
            for part in (*path.split("/"), *candidate.relative_to(root).parts)
        )
        return None if any(hidden) else candidate


def make_app(config: Config, transport: Callable[[], Transport] | None = None) -> App:
    """The serve WSGI application; ``transport`` makes the Transport that sends confirmation messages
    (default: the configured ``[send] transport``)."""
    if transport is None:
        from broadsheet.delivery.transports import transport_class

        cls = transport_class(config.send.transport)
        transport = lambda: cls(config)  # noqa: E731
        return App(config, transport, transport_name=config.send.transport)
    return App(config, transport)


UNSUBSCRIBED = Response.text(200, "unsubscribed\n")  # a one-click's answer, never sent as it is (see App.__call__)


def leaving(email: str, source: str, campaign: str) -> Suppression:
    """An unsubscribe as the store's writer records it."""
    return Suppression(email, "unsubscribed", source, campaign)


def one_click_answer(unsubscribed: bool) -> Response:
    """A one-click's answer: 200 once it is recorded, 429 when a rate limit refused it."""
    return Response.text(200, "unsubscribed\n") if unsubscribed else Response.text(429, "too many requests\n")


def _file(path: Path) -> Response:
    """A static file (the logo, the site/ archive): cached an hour, never framed."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
        kind += "; charset=utf-8"
    headers = {
        "Cache-Control": "public, max-age=3600",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    }
    return Response(path.read_bytes(), 200, headers, content_type=kind)


def _path_for_log(path: str) -> str:
    """A path for the log with any token cut off (tokens name subscribers)."""
    return TOKEN_PATH.sub(lambda m: f"/{m[1]}/…", path)

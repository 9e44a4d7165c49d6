"""The HTTP layer every transactional-mail API transport shares (after django-anymail's base_requests).

A provider module only builds its payload and reads its answer; this module owns the rest: one pooled
``requests.Session`` per transport instance, explicit (connect, read) timeouts, no redirects, HTTP
status to exception mapping, ``Retry-After`` and rate-limit reset parsing, batches that take several
requests, ambiguous failures (no answer after the request went out), answers that are not the
provider's, and secret-free text (one scrub on the way out). The shared-body form that SendGrid and
Mailgun use is in ``shared_body``.

Every message this module and the providers raise is the reason alone: the provider's name is in
``where`` (``Postmark api.postmarkapp.com``), and ``detail`` adds it once to each Delivery.
"""

from __future__ import annotations

import email.header
import email.utils
import ipaddress
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.auth
from urllib3.exceptions import MaxRetryError, NewConnectionError

from broadsheet import __version__
from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config, secret
from broadsheet.core.errors import ConfigError, TransientTransportError, TransportAuthError, TransportError

from . import wire
from .base import Delivery, Status, Transport, TransportOptions, Verdict

log = logging.getLogger("broadsheet.delivery.transports")

DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds to connect, seconds to wait for the answer
# Headers every API takes from its own fields or builds itself from the body; a DKIM signature of
# our raw bytes would not match what the provider builds (it signs for the domain itself).
STRUCTURAL_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
    }
)
ERROR_TEXT_LIMIT = 300  # characters of a server's own reason
DETAIL_LIMIT = 500  # characters of a Delivery's detail (our words and the server's reason)
# A gateway (load balancer, CDN) gave up waiting after passing the request on: the provider may have it.
GATEWAY_TIMEOUTS = frozenset({504, 524, 598, 599})
MAX_ANSWER_BYTES = 10_000_000  # an answer to 500 messages is about 100 KB
MAX_ID = 1000  # characters of an id or address in an answer; longer is not the provider's
# Raised before the request could be built or sent: nothing went out, and sending again will not help.
NOT_SENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidProxyURL,
)
_warned_plain_http: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


class AmbiguousSend(Exception):
    """The request may have reached the provider, but no answer came back (read timeout, reset)."""


class UnexpectedAnswer(TransportError):
    """An answer that is not the provider's (a proxy's HTML page, JSON of another shape, a 303): the
    request may have been taken, so its recipients are unknown; the campaign stops."""


class BatchPart(list[Message]):
    """The messages of one request, and what that request carries besides them (django-anymail's
    payload): the caller's ``batch_key``, where each message sits in the batch (``positions``) and what
    ``split`` prepared for each (``prepared``: a shared body and values, encoded JSON). Made per
    ``send_batch`` call and handed down, never kept on the transport: the transport holds no
    per-request state."""

    def __init__(
        self,
        messages: Iterable[Message],
        *,
        positions: list[int] | None = None,
        prepared: list[Any] | None = None,
        batch_key: str | None = None,
    ):
        super().__init__(messages)
        self.positions = positions if positions is not None else list(range(len(self)))
        self.prepared: list[Any] = prepared if prepared is not None else [None] * len(self)
        self.batch_key = batch_key

    def subset(self, local: Iterable[int]) -> BatchPart:
        """The part of these messages at ``local`` (positions within this part), with their state."""
        chosen = list(local)
        return BatchPart(
            [self[j] for j in chosen],
            positions=[self.positions[j] for j in chosen],
            prepared=[self.prepared[j] for j in chosen],
            batch_key=self.batch_key,
        )


def prepared_of(messages: Sequence[Message]) -> list[Any]:
    """What ``split`` prepared for each of ``messages`` (None each when they come without a BatchPart)."""
    return messages.prepared if isinstance(messages, BatchPart) else [None] * len(messages)


@dataclass
class PartOutcome:
    """What one request did: deliveries by position in its part, and positions to send again."""

    deliveries: dict[int, Delivery] = field(default_factory=dict)
    again: list[list[int]] = field(default_factory=list)  # each list goes out in its own request


class HttpTransport(Transport):
    """Base of the API transports: session, timeouts, status mapping, multi-request batches.

    A provider sets ``name``, ``provider``, ``max_batch`` and implements ``send_part``; it overrides
    ``base_url``, ``load_credentials`` and ``request_credentials`` when its config table or
    authentication differ from the defaults, and ``split`` when a batch may need several requests.
    """

    provider: ClassVar[str] = "HTTP API"  # the provider's name in messages
    resend_delays: ClassVar[tuple[float, ...]] = (1.0, 2.0, 4.0)  # idempotent: waits before sending again

    def __init__(self, config: Config, options: TransportOptions | None = None):
        super().__init__(config, options)
        self.timeout = self.options.timeout or DEFAULT_TIMEOUT
        self.session: requests.Session | None = None
        self.requests_sent = 0  # requests tried in the current batch
        self._secrets: tuple[str, ...] = ()
        self.load_credentials()  # a missing or malformed secret or setting fails now, before a campaign starts
        self._check_base_url()

    # -- provider hooks -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``base_url`` of the provider's config table (named like the transport)."""
        url: str = getattr(self.config, self.name).base_url
        return url

    @property
    def base_url_key(self) -> str:
        """The config key that sets ``base_url`` (for errors)."""
        return f"{self.name}.base_url"

    def load_credentials(self) -> tuple[str, ...]:
        """Read the secrets from the environment (ConfigError when missing or malformed); kept off payloads."""
        return (secret(self.name, token=True),)

    def request_credentials(self) -> dict[str, Any]:
        """``headers`` or ``auth`` (a requests auth) for requests, built from the secrets as each
        request is sent; a bearer token by default."""
        return {"headers": {"Authorization": f"Bearer {self._secrets[0]}"}}

    def secret_forms(self, secrets: tuple[str, ...]) -> tuple[str, ...]:
        """Every form a secret may take on the wire, for ``redact`` (a provider adds encoded ones)."""
        return secrets

    def split(self, batch: BatchPart) -> list[BatchPart]:
        """The requests one batch starts as (``batch.subset``, with what each message needs prepared);
        one request for all by default."""
        return [batch]

    def send_part(self, messages: BatchPart) -> PartOutcome:
        """Send one request for ``messages`` and read the answer."""
        raise NotImplementedError

    @property
    def probe_path(self) -> str:
        """A harmless authenticated GET the provider documents, for ``verify``."""
        return "/"

    def read_probe(self, response: requests.Response) -> Verdict:
        """What the answer to ``probe_path`` says about the credentials: 200 accepted, 401/403 refused."""
        if response.status_code == 200:
            return "ok", f"{self.secret_env} accepted (GET {self.probe_path})"
        if response.status_code in (401, 403):
            return "fail", f"{self.secret_env} refused (HTTP {response.status_code}): {self.error_text(response)}"
        return "fail", f"GET {self.probe_path} answered HTTP {response.status_code}: {self.error_text(response)}"

    def verify(self) -> Verdict:
        """One GET of ``probe_path`` with the credentials; nothing is sent. Network trouble and redirects
        raise a TransportError, as a send would; no text carries a secret."""
        self.open()
        try:
            status, text = self.read_probe(self.request("GET", self.probe_path))
        except AmbiguousSend as exc:
            raise self._scrubbed_error(TransientTransportError(str(exc), where=self.where)) from None
        except TransportError as exc:
            raise self._scrubbed_error(exc) from None
        finally:
            self.close()
        return status, self.shorten(text, DETAIL_LIMIT)

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        if self.session is not None:
            return
        loaded = tuple(s for s in self.load_credentials() if s)
        echoed = [form for s in loaded for form in (s.replace("/", "\\/"), quote(s, safe=""))]  # JSON, URL
        self._secrets = tuple(dict.fromkeys((*self.secret_forms(loaded), *echoed)))
        session = requests.Session()
        adapter = wire.WatchedAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update({"User-Agent": f"broadsheet/{__version__}", "Accept": "application/json"})
        self.session = session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def _check_base_url(self) -> None:
        """The credentials go only to an https:// address, or http:// on this machine (with a warning)."""
        key, url = self.base_url_key, self.base_url
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise self._bad_base_url(
                f"{key} holds a user name or password", f"write only the address; the key comes from {self.secret_env}"
            )
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise self._bad_base_url(f"{key} must be an https:// address, not {url!r}", f'write {key} = "https://…"')
        if parts.scheme == "https":
            return
        if not _loopback(parts.hostname):
            raise self._bad_base_url(
                f"{key} is http://: {self.secret_env} would cross the network unencrypted", "use https://"
            )
        with _warned_lock:
            first = (key, url) not in _warned_plain_http
            _warned_plain_http.add((key, url))
        if first:
            log.warning(
                "warning: %s is %s: %s goes unencrypted (allowed on this machine only)", key, url, self.secret_env
            )

    def _bad_base_url(self, message: str, fix: str) -> ConfigError:
        return ConfigError(message, where=self.config.where(self.base_url_key), fix=fix)

    # -- sending --------------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[Message], *, batch_key: str | None = None) -> list[Delivery]:
        """One Delivery per message, in order. ``batch_key``, when the caller gives one (``send --test``
        does; the campaign runner does not), goes into an idempotent provider's key with a digest of
        the payload.

        The one place where text leaves the transport: every Delivery and error is scrubbed of
        every form of every secret the transport loaded."""
        messages = list(messages)
        if not messages:
            return []
        if len(messages) > self.max_batch:
            raise ValueError(f"{self.provider} takes at most {self.max_batch} messages per batch")
        if self.session is None:
            self.open()
        self.requests_sent = 0
        try:
            deliveries = self._deliver(messages, batch_key)
        except TransportError as exc:
            raise self._scrubbed_error(exc) from None
        except Exception as exc:
            error = TransportError(
                f"stopped by an unexpected {type(exc).__name__}: {self.shorten(str(exc), 200)}", where=self.where
            )
            if self.requests_sent:  # after a request went out: whether it was taken is unknown
                error.deliveries = self._unknown(messages, error)
            raise self._scrubbed_error(error) from None
        return [self._scrubbed(d) for d in deliveries]

    def _deliver(self, messages: list[Message], batch_key: str | None) -> list[Delivery]:
        parts = self.split(BatchPart(messages, batch_key=batch_key))
        try:
            return self.send_parts(messages, parts)
        except AmbiguousSend as exc:
            if self.idempotent:
                return self._send_same_again(messages, parts, exc)
            return self._unknown(messages, exc)

    def _send_same_again(self, messages: list[Message], parts: list[BatchPart], exc: Exception) -> list[Delivery]:
        """Send the very request that went unanswered again, with the same payload and so the same
        idempotency key: the provider delivers it once. (The campaign would compose the rows again
        in other batches, under other keys.) Still no clear answer: unknown. Refused now: unknown
        too (the first request may have gone through), and the refusal stops the campaign."""
        for delay in self.resend_delays:
            time.sleep(max(delay, min(getattr(exc, "retry_after", None) or 0.0, 60.0)))
            try:
                return self.send_parts(messages, parts)
            except (AmbiguousSend, TransientTransportError) as again:
                exc = again
            except TransportError as refused:
                refused.deliveries = self._unknown(messages, exc)
                raise
        return self._unknown(messages, exc)

    def _unknown(self, messages: list[Message], exc: Exception) -> list[Delivery]:
        detail = self.detail(exc)
        log.warning("%s; %d recipient(s) marked unknown", self.redact(detail), len(messages))
        return [Delivery(m.recipient, "unknown", detail=detail) for m in messages]

    def send_parts(self, messages: list[Message], parts: Iterable[BatchPart]) -> list[Delivery]:
        """Send the parts one request each, following ``PartOutcome.again``.

        A refusal that stops the campaign propagates with ``.deliveries`` (one per message, None for
        those not sent; an unexpected answer's part unknown). Otherwise an error before anything is
        known propagates, unless it is a request left unanswered with others after it; else the part
        that failed is returned as unknown (no answer) or deferred, and the parts never sent as deferred."""
        results: list[Delivery | None] = [None] * len(messages)
        queue = deque(parts)
        while queue:
            part = queue.popleft()
            try:
                outcome = self.send_part(part)
            except (AmbiguousSend, TransportError) as exc:
                if isinstance(exc, TransportError) and not isinstance(exc, TransientTransportError):
                    if isinstance(exc, UnexpectedAnswer):
                        for i in part.positions:
                            results[i] = Delivery(messages[i].recipient, "unknown", detail=self.detail(exc))
                    exc.deliveries = results
                    raise
                maybe_sent = isinstance(exc, AmbiguousSend) and queue and not self.idempotent
                if all(r is None for r in results) and not maybe_sent:
                    raise  # about the whole batch (an unanswered part with none after it included)
                self._settle_rest(messages, results, [part, *queue], exc)
                break
            for local, delivery in outcome.deliveries.items():
                results[part.positions[local]] = delivery
            for again in outcome.again:
                if not 0 < len(again) < len(part):  # every round sends fewer: the loop ends
                    error = TransportError("cannot split this request", where=self.where)
                    error.deliveries = results  # those settled are kept; the rest stays queued
                    raise error
                queue.append(part.subset(again))
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # sent, but the answer did not say what became of them
            error = UnexpectedAnswer(f"no result for {len(missing)} recipient(s) in the answer", where=self.where)
            for i in missing:
                results[i] = Delivery(messages[i].recipient, "unknown", detail=self.detail(error))
            error.deliveries = results
            raise error
        return results  # type: ignore[return-value]

    def _settle_rest(
        self, messages: list[Message], results: list[Delivery | None], parts: list[BatchPart], exc: Exception
    ) -> None:
        first, *later = parts
        status: Status = "unknown" if isinstance(exc, AmbiguousSend) else "deferred"
        retry_after = getattr(exc, "retry_after", None)
        for i in first.positions:
            results[i] = Delivery(messages[i].recipient, status, detail=self.detail(exc), retry_after=retry_after)
        for part in later:
            for i in part.positions:
                results[i] = Delivery(
                    messages[i].recipient, "deferred", detail=self.detail("not sent: an earlier request failed")
                )

    def post(
        self, path: str, *, body: bytes | None = None, files: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """POST to the provider, never following a redirect (a 3xx is a TransportError naming where it
        pointed). Network errors become TransientTransportError (nothing sent) or AmbiguousSend
        (maybe sent). Other statuses are not checked here."""
        return self.request("POST", path, body=body, files=files, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """``method`` to the provider with the credentials, as ``post`` says."""
        credentials = self.request_credentials()
        auth = credentials.get("auth") or HeaderAuth(credentials.get("headers", {}))  # never ~/.netrc's
        request = requests.Request(
            method, self.base_url.rstrip("/") + path, data=body, files=files, headers=headers or {}, auth=auth
        )
        session: requests.Session = self.session  # type: ignore[assignment]
        try:
            prepared = session.prepare_request(request)
            url = prepared.url or ""
            settings = session.merge_environment_settings(url, {}, None, None, None)
            if url.startswith("http://"):  # loopback only: a proxy would carry the key off in clear
                settings["proxies"] = {}
            settings["stream"] = True  # the body is read by _read_answer, at most MAX_ANSWER_BYTES of it
        except Exception as exc:
            raise TransportError(f"cannot make the request ({type(exc).__name__})", where=self.where) from None
        started = time.perf_counter()
        wire.reset()
        self.requests_sent += 1
        try:
            response = session.send(prepared, allow_redirects=False, timeout=self.timeout, **settings)
            self._read_answer(response)
        except TransportError:
            raise
        except requests.RequestException as exc:
            raise self._network_error(exc) from None
        except Exception as exc:
            if wire.phase() == "connecting":
                raise TransientTransportError(f"cannot connect ({type(exc).__name__})", where=self.where) from None
            raise AmbiguousSend(f"the request broke off ({type(exc).__name__})") from None
        elapsed = 1000 * (time.perf_counter() - started)
        log.debug("%s: %s %s -> %d in %.0f ms", self.provider, method, path, response.status_code, elapsed)
        if 300 <= response.status_code < 400:
            raise self._redirected(response)
        return response

    def _read_answer(self, response: requests.Response) -> None:
        """Read the body into the response, or stop at MAX_ANSWER_BYTES (a web server sending a file,
        say): that is not the provider's answer, and holding it all could exhaust the memory."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                response.close()
                raise self.unexpected(response, f"a body of more than {MAX_ANSWER_BYTES // 1_000_000} MB")
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what .content, .text and .json() read from now on

    def _redirected(self, response: requests.Response) -> TransportError:
        """Never followed: it would take the credentials to wherever it points. A 303 says the
        request was taken (its recipients unknown); any other 3xx that it was not (they stay queued)."""
        target = _host(urljoin(self.base_url, response.headers.get("Location", "")))
        error = UnexpectedAnswer if response.status_code == 303 else TransportError
        return error(
            f"answered HTTP {response.status_code}, a redirect to {target or 'an unreadable address'}; "
            "redirects are not followed (they would carry the credentials)",
            where=self.where,
            fix=f"set {self.base_url_key} to the provider's API address itself",
        )

    def _network_error(self, exc: requests.RequestException) -> Exception:
        kind = type(exc).__name__
        if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return TransportError(  # refused in the handshake, before the request: nothing went out
                "the server's certificate is not trusted", where=self.where, fix=f"check {self.base_url_key}"
            )
        if isinstance(exc, NOT_SENDABLE):
            return TransportError(
                f"cannot send the request ({kind})", where=self.where, fix=f"check {self.base_url_key}"
            )
        phase = wire.phase()
        if phase == "connecting" or (phase == "idle" and _never_sent(exc)):
            return TransientTransportError(f"cannot connect ({kind})", where=self.where)
        if isinstance(exc, requests.ReadTimeout):
            return AmbiguousSend(f"no answer within {self.timeout[1]:g} s after sending")
        return AmbiguousSend(f"connection lost after sending ({kind})")

    # -- reading answers ------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.provider} {_host(self.base_url)}"

    def detail(self, reason: Exception | str) -> str:
        """A Delivery's detail: the provider's name, once, and the reason (one line, kept short)."""
        text = reason.message if isinstance(reason, TransportError) else str(reason)
        return f"{self.provider}: {self.shorten(text, DETAIL_LIMIT)}"

    def raise_for_status(self, response: requests.Response) -> None:
        """401/403 stop the campaign; a gateway timeout is an answer lost (AmbiguousSend); 408, 429
        and other 5xx are worth retrying. Other 4xx are left to the provider (use ``request_error``
        for those it cannot pin on a recipient)."""
        status = response.status_code
        if status in (401, 403):
            raise self.auth_error(response)
        if status in GATEWAY_TIMEOUTS:
            raise AmbiguousSend(f"answered HTTP {status}: a gateway stopped waiting for the provider's answer")
        if status in (408, 429) or status >= 500:
            raise TransientTransportError(
                f"answered HTTP {status}: {self.error_text(response)}",
                where=self.where,
                retry_after=retry_after(response),
            )

    def auth_error(self, response: requests.Response | None = None, reason: str = "") -> TransportAuthError:
        status = f" (HTTP {response.status_code})" if response is not None else ""
        reason = reason or (self.error_text(response) if response is not None else "")
        fix = f"check {self.secret_env} and that the sender is verified" if self.secret_env else None
        return TransportAuthError(f"refused to send{status}: {reason}", where=self.where, fix=fix)

    def request_error(self, response: requests.Response) -> TransportError:
        """A whole request refused for a reason no recipient explains: stop, do not fail anyone."""
        return TransportError(
            f"refused the request (HTTP {response.status_code}): {self.error_text(response)}", where=self.where
        )

    def error_text(self, response: requests.Response) -> str:
        """The provider's own reason, short, with any secret blanked out."""
        body = json_of(response)
        text = response.text if body is None else describe_error(body)
        return self.shorten(text) or response.reason or ""

    def shorten(self, text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
        """One line of at most ``limit`` characters, secrets blanked out first (a cut must not leave
        part of one)."""
        return " ".join(self.redact(text).split())[:limit]

    def redact(self, text: str) -> str:
        for value in sorted(self._secrets, key=len, reverse=True):  # a secret may contain another
            text = text.replace(value, "[secret]")
        return text

    def _scrubbed(self, delivery: Delivery) -> Delivery:
        clean = self.redact(delivery.detail)
        return delivery if clean == delivery.detail else replace(delivery, detail=clean)

    def _scrubbed_error(self, exc: TransportError) -> TransportError:
        exc.message = self.redact(exc.message)
        exc.args = (exc.message,)
        exc.where = self.redact(exc.where) if exc.where else exc.where
        exc.fix = self.redact(exc.fix) if exc.fix else exc.fix
        exc.deliveries = [d if d is None else self._scrubbed(d) for d in exc.deliveries]
        exc.__cause__, exc.__suppress_context__ = None, True
        return exc

    # -- is this the provider's answer? ---------------------------------------------------------

    def unexpected(self, response: requests.Response, what: str) -> UnexpectedAnswer:
        """The request may have been taken, but this answer is not the provider's."""
        kind = response.headers.get("Content-Type", "") or "no content type"
        return UnexpectedAnswer(
            f"answered HTTP {response.status_code} ({self.shorten(kind, 60)}) with {what}: not the provider's answer, "
            "so whether it sent them is unknown",
            where=self.where,
            fix=f"check {self.base_url_key} (a proxy or web page answering?), then resend with --retry-unknown",
        )

    def json_answer(self, response: requests.Response, status: int = 200) -> Any:
        """The JSON of an answer that is the provider's: ``status`` and a JSON content type;
        otherwise UnexpectedAnswer. The shape is the provider's to check (see ``unexpected``)."""
        if response.status_code != status:
            raise self.unexpected(response, f"a status other than {status}")
        if not _is_json(response.headers.get("Content-Type", "")):
            raise self.unexpected(response, "a body that is not JSON")
        body = json_of(response)
        if body is None:
            raise self.unexpected(response, "JSON that does not parse")
        return body

    def failed(self, message: Message, reason: str, *, bounce: str = "") -> Delivery:
        """``bounce``: the provider refused this recipient itself (``hard_bounce`` or ``soft_bounce``)."""
        return Delivery(message.recipient, "failed", detail=self.detail(reason), bounce=bounce)

    def deferred(self, message: Message, reason: str) -> Delivery:
        return Delivery(message.recipient, "deferred", detail=self.detail(reason))


class HeaderAuth(requests.auth.AuthBase):
    """Credentials sent as headers. Given as the request's auth, it also keeps requests from adding
    credentials of its own from ``~/.netrc`` (which would replace a bearer token)."""

    def __init__(self, headers: dict[str, str]):
        self.headers = headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


def json_of(response: requests.Response) -> Any:
    """The body as JSON; None when it is not JSON (or is nested deeper than Python parses)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def field_of(response: requests.Response, key: str) -> Any:
    """``key`` of a JSON object body; None when there is no such object or key."""
    body = json_of(response)
    return body.get(key) if isinstance(body, dict) else None


def _is_json(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def strings(answer: Any, *keys: str) -> tuple[str, ...] | None:
    """The values of ``keys`` when ``answer`` is an object where each is a non-empty string of at
    most MAX_ID characters; else None."""
    if not isinstance(answer, dict):
        return None
    values = tuple(answer.get(k) for k in keys)
    ok = all(isinstance(v, str) and 0 < len(v) <= MAX_ID for v in values)
    return values if ok else None  # type: ignore[return-value]


def _host(url: str) -> str:
    """host[:port] of an address, without user name, password, path or query; "" if there is none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if not re.fullmatch(r"[a-z0-9.\-:\[\]_]{1,255}", host):
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def every(messages: Sequence[Message], status: Status, *, detail: str = "", message_id: str = "") -> PartOutcome:
    """The same outcome for every message of one request."""
    return PartOutcome({i: Delivery(m.recipient, status, detail, message_id) for i, m in enumerate(messages)})


_RECIPIENT_PROBLEM = re.compile(r"\bto\b|recipient", re.IGNORECASE)


def about_recipient(reason: str) -> bool:
    """Whether a refusal names the recipient (``'to' parameter…``, ``Invalid 'To' address``) rather
    than something every message shares (the From address, the payload): only the former fails one
    recipient; the latter must stop the campaign instead of failing everyone."""
    return bool(_RECIPIENT_PROBLEM.search(reason))


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the provider cannot have the request (judged by
    the exception alone, when ``wire`` could not watch the connection)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc.args[0] if exc.args else None, MaxRetryError) and isinstance(reason, NewConnectionError)


def describe_error(body: Any) -> str:
    """The reason in the usual JSON error shapes (Postmark, SendGrid, Mailgun, SES, Resend)."""
    if isinstance(body, dict):
        code = body.get("ErrorCode", body.get("name", body.get("code")))
        message = body.get("Message") or body.get("message") or ""
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            message = "; ".join(_error_item(e) for e in errors[:5])
        return f"{code}: {message}" if code not in (None, "") else str(message)
    return str(body)


def _error_item(item: Any) -> str:
    if isinstance(item, dict):
        where = item.get("field")
        text = str(item.get("message", ""))
        return f"{text} ({where})" if where else text
    return str(item)


def retry_after(response: requests.Response, now: float | None = None) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP date), else a rate-limit reset header
    (seconds from now, or an epoch time in seconds or milliseconds)."""
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value:
        seconds = _number(value)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return max(0.0, seconds)
    for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
        seconds = _number(response.headers.get(name, ""))
        if seconds is not None:
            if seconds > 1e12:
                seconds = seconds / 1000 - now
            elif seconds > 1e9:
                seconds -= now
            return max(0.0, seconds)
    return None


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


# -- message fields in API form ------------------------------------------------------------------


def api_headers(message: Message, drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """The message's custom headers an API takes as-is: all but the structural ones and ``drop``
    (lower-case names the provider takes elsewhere or forbids)."""
    return {
        k: v for k, v in message.headers.items() if (low := k.lower()) not in STRUCTURAL_HEADERS and low not in drop
    }


def header(message: Message, name: str) -> str:
    low = name.lower()
    return next((v for k, v in message.headers.items() if k.lower() == low), "")


def address(value: str) -> tuple[str, str]:
    """(display name decoded to Unicode, bare address) of one address header value."""
    plain = _PLAIN_ADDRESS.fullmatch(value)
    if plain:  # the usual ``Name <addr>`` or ``addr``, without the cost of parseaddr
        return (plain.group(1) or "").strip(), plain.group(2) or plain.group(3)
    name, addr = email.utils.parseaddr(value)
    if "=?" in name:
        name = str(email.header.make_header(email.header.decode_header(name)))
    return name, addr


_PLAIN_ADDRESS = re.compile(r'(?:([^"<>()\\,;:@\[\]=]*)<([^<>\s]+@[^<>\s]+)>|([^<>\s"]+@[^<>\s"]+))')


def json_bytes(data: Any) -> bytes:
    """Compact JSON; ASCII escapes encode faster than UTF-8 output (a few more bytes)."""
    return _ENCODER.encode(data).encode("ascii")


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))

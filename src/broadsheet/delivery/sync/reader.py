"""GET requests to a provider's API through its transport: the same session, credentials, timeouts and
secret-free errors (transports/http.py), with Retry-After followed on 429 and 5xx."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from broadsheet.core.errors import TransientTransportError, TransportError

from ..transports.http import HttpTransport

ATTEMPTS = 5
LONGEST_WAIT = 60.0  # seconds: a longer Retry-After is cut to this
FIRST_WAIT = 1.0  # seconds before the first retry when the provider says nothing; doubles
MAX_PAGES = 10_000  # pages one sync run reads at most, over all lists: a provider that pages for ever stops


class ApiReader:
    """Reads JSON pages from one provider. Only URLs on the transport's own host get its credentials."""

    def __init__(self, transport: HttpTransport, *, sleep: Callable[[float], None] = time.sleep):
        self.transport, self.sleep = transport, sleep
        self.requests = 0
        self.pages = 0
        self.notes: list[str] = []  # why a run stopped short, for the command to print
        transport.open()

    def another_page(self) -> bool:
        """True while this run may read one more page (MAX_PAGES in all); past that, False and a note."""
        if self.pages >= MAX_PAGES:
            note = f"stopped after {MAX_PAGES:,} pages, the most one run reads; the lists were not read to the end"
            if note not in self.notes:
                self.notes.append(note)
            return False
        self.pages += 1
        return True

    def get(self, path_or_url: str, params: dict[str, Any] | None = None) -> Any:
        url = self._url(path_or_url)
        wait = FIRST_WAIT
        for attempt in range(ATTEMPTS):
            try:
                return self._get_once(url, params)
            except TransientTransportError as exc:
                if attempt == ATTEMPTS - 1:
                    raise
                self.sleep(min(LONGEST_WAIT, exc.retry_after if exc.retry_after is not None else wait))
                wait *= 2
        raise AssertionError("unreachable")

    def _get_once(self, url: str, params: dict[str, Any] | None) -> Any:
        transport = self.transport
        credentials = transport.request_credentials()
        self.requests += 1
        try:
            response = transport.session.get(  # type: ignore[union-attr]
                url,
                params=params,
                headers=credentials.get("headers"),
                auth=credentials.get("auth"),
                timeout=transport.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransientTransportError(
                f"{transport.provider}: request failed ({type(exc).__name__})", where=transport.where
            ) from None
        transport.raise_for_status(response)  # 401/403 stop; 408, 429, 5xx are retried after Retry-After
        if response.status_code >= 300:
            raise transport.request_error(response)
        try:
            return response.json()
        except ValueError:
            raise TransportError(
                f"{transport.provider}: unreadable answer to a list request", where=transport.where
            ) from None

    def _url(self, path_or_url: str) -> str:
        base = self.transport.base_url.rstrip("/")
        if "://" not in path_or_url:
            return base + path_or_url
        if urlsplit(path_or_url)[:2] != urlsplit(base)[:2]:
            raise TransportError(
                f"{self.transport.provider}: a paging link points at another host; not followed",
                where=self.transport.where,
            )
        return path_or_url

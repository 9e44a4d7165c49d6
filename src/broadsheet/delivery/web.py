"""The one HTTP request `broadsheet doctor` makes of the unsubscribe address: RFC 8058's one-click POST."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from broadsheet import __version__

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Answer:
    status: int
    location: str = ""  # where a 3xx pointed


def one_click_post(url: str, *, timeout: float = 10.0) -> Answer:
    """POST ``List-Unsubscribe=One-Click`` to ``url`` as a mailbox provider does: TLS verified, redirects not
    followed (providers do not follow them). A network failure raises ``requests.RequestException``."""
    response = requests.post(
        url,
        data=ONE_CLICK_BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": f"broadsheet/{__version__}"},
        allow_redirects=False,
        timeout=timeout,
    )
    response.close()
    return Answer(response.status_code, response.headers.get("Location", ""))

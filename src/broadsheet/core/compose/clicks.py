"""Counted links for one campaign: the shared token of each link made once, or (``per_subscriber``) a
token per reader and link, made only for the links a reader's message holds."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..render.clicks import TrackedIssue, track_links
from ..render.model import RenderedIssue
from ..tokens import MAX_TOKEN_CHARS, ClickLink, make_click_token

LONGEST_ADDRESS = "x" * 254  # RFC 5321's longest path: a per-reader token is never longer than with this


def click_base(config: Config) -> str:
    """Where counted links point: ``{serve.public_url}/r/``."""
    return config.serve.public_url.rstrip("/") + "/r/"


def count_links(rendered: RenderedIssue, config: Config, *, secret: str, campaign: str) -> TrackedIssue:
    """The issue with its links pointed at serve. Without ``per_subscriber`` every link's token is made
    here, once, and nothing changes per message; with it, each link holds ``{{ clicks[n] }}``, which
    :class:`ReaderClicks` fills per recipient. A link whose token would be too long for serve stays as it is."""
    base, public_url = click_base(config), config.serve.public_url
    reader = LONGEST_ADDRESS if config.tracking.per_subscriber else ""

    def href(number: int, url: str) -> str | None:
        token = make_click_token(ClickLink(campaign, number, url, reader), config.list_id, secret)
        if len(token) > MAX_TOKEN_CHARS:
            return None  # an address too long to seal (serve refuses such tokens): linked as it is, not counted
        return base + (f"{{{{ clicks[{number}] }}}}" if reader else token)

    return track_links(rendered, href, public_url=public_url)


@dataclass(frozen=True)
class ReaderLinks:
    """A campaign's links counted per reader: ``for_reader(email)`` fills ``clicks[n]`` in its templates."""

    urls: tuple[str, ...]
    campaign: str
    list_id: str
    secret: str

    def for_reader(self, email: str) -> ReaderClicks:
        return ReaderClicks(self, email)


class ReaderClicks:
    """``clicks[n]`` in a per-recipient template: this reader's token for link ``n`` (made when used)."""

    def __init__(self, links: ReaderLinks, email: str):
        self.links, self.email = links, email

    def __getitem__(self, number: int) -> str:
        links = self.links
        link = ClickLink(links.campaign, number, links.urls[number], self.email)
        return make_click_token(link, links.list_id, links.secret)

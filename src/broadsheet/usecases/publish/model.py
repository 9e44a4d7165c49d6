"""What the publish package hands between its steps: the site's settings and one entry per issue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from broadsheet.core.config import Brand, Config
from broadsheet.core.render.palette import Palette, palette_of

INDEX = "index.html"
FEED = "feed.xml"
SITEMAP = "sitemap.xml"
FAVICON = "favicon.png"
TOUCH_ICON = "apple-touch-icon.png"
REMOTE = ("http://", "https://")


@dataclass(frozen=True)
class Entry:
    """One published issue, as the index, its page and the feed show it."""

    slug: str
    title: str
    date: dt.date
    number: int | str | None
    summary: str
    hero: str  # the lead image: relative to the page (images/x.png) or a remote URL; "" without one
    hero_alt: str
    page_html: str  # the browser version, its images linked relatively
    content_html: str  # intro and articles, for the feed
    images: tuple[tuple[str, Path], ...]  # (name under <slug>/images/, source file)

    @property
    def folder(self) -> str:
        """The entry's folder in the site, as it appears in a link."""
        return quote(self.slug)


@dataclass(frozen=True)
class Site:
    """The newsletter-wide settings the pages, feed and sitemap need."""

    name: str
    language: str
    base_url: str  # "" → no feed, sitemap or absolute social-card links (they need absolute addresses)
    signup_url: str  # "" → no sign-up link
    primary_color: str
    accent_color: str
    background_color: str
    text_color: str
    logo: str  # its address in a link from the site root (file name, quoted), a remote URL, or ""
    logo_alt: str
    favicon: bool = False
    subscribers: int | None = None  # shown on the index only when asked (publish --subscriber-count)

    @classmethod
    def from_config(cls, config: Config, *, logo: str, favicon: bool) -> Site:
        brand = config.brand
        return cls(
            name=config.name, language=config.language, base_url=config.base_url.rstrip("/"),
            signup_url=signup_url(config), primary_color=brand.primary_color, accent_color=brand.accent_color,
            background_color=brand.background_color, text_color=brand.text_color,
            logo=logo, logo_alt=brand.logo_alt or config.name, favicon=favicon,
        )  # fmt: skip

    @property
    def palette(self) -> Palette:
        """The theme's colours for this brand, dark mode's among them."""
        colours = Brand(primary_color=self.primary_color, accent_color=self.accent_color,
                        background_color=self.background_color, text_color=self.text_color)  # fmt: skip
        return palette_of(colours)

    def absolute(self, path: str = "") -> str:
        """``path`` (relative to the site root) as an absolute address; "" without base_url."""
        return f"{self.base_url}/{path}" if self.base_url else ""

    def page_url(self, entry: Entry) -> str:
        return self.absolute(f"{entry.folder}/")

    def image_url(self, entry: Entry) -> str:
        """The entry's lead image as an absolute address (for social cards); the logo when it has none."""
        if entry.hero.startswith(REMOTE):
            return entry.hero
        if entry.hero:
            return self.absolute(f"{entry.folder}/{entry.hero}")
        return self.logo_url()

    def logo_url(self) -> str:
        """The logo as an absolute address ("" without a logo or base_url)."""
        if self.logo.startswith(REMOTE):
            return self.logo
        return self.absolute(self.logo) if self.logo else ""

    def tag_uri(self, entry: Entry) -> str:
        """The entry's Atom id (RFC 4151): stable whatever the scheme or path the site moves to."""
        host = urlsplit(self.base_url).hostname or "localhost"
        return f"tag:{host},{entry.date.isoformat()}:{entry.folder}"


def signup_url(config: Config) -> str:
    """``[serve] public_url``/subscribe when the project serves a sign-up form, else ""."""
    public_url = getattr(getattr(config, "serve", None), "public_url", "") or ""
    return f"{public_url.rstrip('/')}/subscribe" if public_url else ""

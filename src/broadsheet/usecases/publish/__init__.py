"""Publish: every non-draft issue → a static web archive (index, pages, Atom feed, sitemap, icons).

Pelican's shape: the reader reads issues through content and render (the same pipeline as the email),
generators turn entries into pages and feeds, the writer puts them in the output folder and nowhere else.
Links inside the site are relative (it works from any base path); the feed, the sitemap and the social
cards use base_url, which they need absolute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from broadsheet.core.config import Config
from broadsheet.core.content.optimise import COLUMN_WIDTH
from broadsheet.core.render.build import logo_file, optimised_logo
from broadsheet.data.store import Store

from .favicon import icons
from .feed import atom_feed, sitemap
from .model import FAVICON, FEED, INDEX, SITEMAP, TOUCH_ICON, Entry, Site
from .pages import index_page, issue_page
from .reader import read_entries
from .writer import SiteWriter


@dataclass(frozen=True)
class Published:
    """What one run wrote."""

    out: Path
    entries: tuple[Entry, ...]
    files: tuple[str, ...]
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def publish_site(config: Config, out: Path, *, subscriber_count: bool = False) -> Published:
    """Build the archive of every non-draft issue into ``out``; ``subscriber_count``: the index says how many
    are subscribed (the store's count; off by default, as the count is the publisher's to make public)."""
    writer = SiteWriter(out)
    notes: list[str] = []
    entries = read_entries(config, notes=notes)
    site = Site.from_config(config, logo="", favicon=False)
    site, brand_notes = _write_brand(writer, config, site)
    notes += brand_notes
    if subscriber_count:
        site = dataclasses.replace(site, subscribers=subscribed(config))
    for position, entry in enumerate(entries):
        older = entries[position + 1] if position + 1 < len(entries) else None
        newer = entries[position - 1] if position else None
        writer.write(f"{entry.slug}/{INDEX}", issue_page(entry, site, older=older, newer=newer))
        for name, source in entry.images:
            writer.copy(f"{entry.slug}/images/{name}", source)
    writer.write(INDEX, index_page(entries, site))
    if site.base_url:
        writer.write(FEED, atom_feed(entries, site))
        writer.write(SITEMAP, sitemap(entries, site))
    else:
        notes.append("base_url is not set: no feed, no sitemap, and social cards without addresses (set base_url)")
    removed = writer.finish()
    return Published(writer.root, tuple(entries), tuple(sorted(writer.written)), tuple(removed), tuple(notes))


def subscribed(config: Config) -> int:
    """How many addresses the configured store has subscribed (0 without a store; none is created)."""
    if not Store.exists_for_config(config):
        return 0
    with Store.for_config(config) as store:
        return store.count("subscribed")


def _write_brand(writer: SiteWriter, config: Config, site: Site) -> tuple[Site, list[str]]:
    """The logo at the site root and the icons made from it; the Site that links them."""
    path = logo_file(config)
    if path is None and not config.brand.logo:
        return site, ["no brand.logo: the site has no favicon"]
    if path is None:
        return Site.from_config(config, logo=config.brand.logo, favicon=False), [
            "brand.logo is a web address: no favicon is made from it"
        ]
    name = f"logo-{path.name}"
    writer.copy(name, optimised_logo(config, path, width=COLUMN_WIDTH).file)  # the file as is would carry its EXIF
    made = icons(path, where=config.where("brand.logo"))
    writer.write(FAVICON, made["favicon"])
    writer.write(TOUCH_ICON, made["touch"])
    return Site.from_config(config, logo=quote(name), favicon=True), []


__all__ = ["publish_site", "Published", "Entry", "Site"]

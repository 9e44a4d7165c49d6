"""Generators for the machine-read files: the Atom feed (feedgen) and the sitemap. Both need base_url."""

from __future__ import annotations

import datetime as dt

import lxml.html
from feedgen.feed import FeedGenerator
from lxml import etree

from broadsheet import __version__

from .model import FAVICON, FEED, Entry, Site

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def atom_feed(entries: list[Entry], site: Site) -> bytes:
    """An Atom 1.0 feed of every issue with its full content; dated by the issues, never by the clock."""
    feed = FeedGenerator()
    feed.id(site.absolute())
    feed.title(site.name)
    feed.author({"name": site.name})
    feed.link(href=site.absolute(), rel="alternate", type="text/html")
    feed.link(href=site.absolute(FEED), rel="self", type="application/atom+xml")
    feed.language(site.language)
    feed.generator("broadsheet", version=__version__)
    if site.favicon:
        feed.icon(site.absolute(FAVICON))
    feed.updated(_timestamp(entries[0].date) if entries else dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    for entry in entries:  # newest first, as written
        item = feed.add_entry(order="append")
        item.id(site.tag_uri(entry))
        item.title(entry.title)
        item.link(href=site.page_url(entry), rel="alternate", type="text/html")
        item.published(_timestamp(entry.date))
        item.updated(_timestamp(entry.date))
        item.summary(entry.summary)
        item.content(absolute_links(entry.content_html, site.page_url(entry)), type="html")
    atom: bytes = feed.atom_str(pretty=True, encoding="UTF-8")  # feedgen is untyped
    return atom


def sitemap(entries: list[Entry], site: Site) -> bytes:
    """sitemaps.org XML: the index and every issue page, with the issue's date."""
    urlset = etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS})
    pages = [(site.absolute(), entries[0].date if entries else None)]
    pages += [(site.page_url(entry), entry.date) for entry in entries]
    for address, date in pages:
        url = etree.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
        etree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = address
        if date:
            etree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = date.isoformat()
    return etree.tostring(urlset, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def absolute_links(fragment: str, base: str) -> str:
    """``fragment`` with every link and image address made absolute against ``base`` (feed readers need it)."""
    if not base or not fragment.strip():
        return fragment
    wrapper = lxml.html.fragment_fromstring(fragment, create_parent="div")
    wrapper.make_links_absolute(base, resolve_base_href=False)
    inner = lxml.html.tostring(wrapper, encoding="unicode")
    return inner[len("<div>") : -len("</div>")]


def _timestamp(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(0), tzinfo=dt.UTC)

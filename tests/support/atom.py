"""The rules of RFC 4287 (Atom 1.0) that a feed can break, checked on the parsed XML.

No maintained Atom validator installs from PyPI, so the tests check the RFC's MUSTs themselves (and
read the feed with feedparser as an independent consumer). Returns a list of problems; [] is valid.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")  # section 3.3
TEXT_TYPES = {"text", "html", "xhtml"}  # section 3.1.1


def atom_problems(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    if root.tag != f"{ATOM}feed":
        return [f"the root element is {root.tag}, not atom:feed (4.1.1)"]
    problems = _container(root, "feed")
    entries = root.findall(f"{ATOM}entry")
    if not root.findall(f"{ATOM}author") and not all(e.findall(f"{ATOM}author") for e in entries):
        problems.append("atom:feed has no atom:author and not every entry has one (4.1.1)")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    if len(ids) != len(set(ids)):
        problems.append("entry ids are not unique (4.1.1: entries with the same id are the same entry)")
    for number, entry in enumerate(entries, 1):
        problems += _container(entry, f"entry {number}")
        if len(entry.findall(f"{ATOM}content")) > 1:
            problems.append(f"entry {number}: more than one atom:content (4.1.2)")
        if not entry.findall(f"{ATOM}content") and not _links(entry, "alternate"):
            problems.append(f"entry {number}: neither atom:content nor a link rel=alternate (4.1.2)")
        if len(entry.findall(f"{ATOM}published")) > 1 or len(entry.findall(f"{ATOM}summary")) > 1:
            problems.append(f"entry {number}: more than one atom:published or atom:summary (4.1.2)")
        for element in (*entry.findall(f"{ATOM}published"),):
            problems += _date(element, f"entry {number}")
    return problems


def _container(element, name: str) -> list[str]:
    """The MUSTs shared by atom:feed and atom:entry: one id, title and updated; valid links and texts."""
    problems = []
    for child in ("id", "title", "updated"):
        count = len(element.findall(f"{ATOM}{child}"))
        if count != 1:
            problems.append(f"{name}: {count} atom:{child} elements, must be exactly one (4.1.1/4.1.2)")
    identifier = element.findtext(f"{ATOM}id") or ""
    if not urlsplit(identifier).scheme:
        problems.append(f"{name}: atom:id {identifier!r} is not an absolute IRI (4.2.6)")
    for updated in element.findall(f"{ATOM}updated"):
        problems += _date(updated, name)
    for text in (*element.findall(f"{ATOM}title"), *element.findall(f"{ATOM}summary")):
        if text.get("type", "text") not in TEXT_TYPES:
            problems.append(f"{name}: {text.tag} type {text.get('type')!r} (3.1.1)")
    seen = set()
    for link in element.findall(f"{ATOM}link"):
        if not link.get("href"):
            problems.append(f"{name}: atom:link without href (4.2.7.1)")
        if link.get("rel", "alternate") == "alternate":
            key = (link.get("type"), link.get("hreflang"))
            if key in seen:
                problems.append(f"{name}: two rel=alternate links with the same type and hreflang (4.1.1)")
            seen.add(key)
    return problems


def _date(element, name: str) -> list[str]:
    return (
        []
        if RFC3339.match(element.text or "")
        else [f"{name}: {element.tag} {element.text!r} is no RFC 3339 date (3.3)"]
    )


def _links(element, rel: str) -> list:
    return [link for link in element.findall(f"{ATOM}link") if link.get("rel", "alternate") == rel]

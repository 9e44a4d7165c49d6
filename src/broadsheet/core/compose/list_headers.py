"""The headers that tell receivers about the list rather than the reader, the same for every recipient: where
its pages are (RFC 2369, RFC 5064), Gmail's Feedback-ID, and no out-of-office replies."""

from __future__ import annotations

import hashlib
import re

from ..config import Config
from ..render.model import RenderedIssue

FEEDBACK_ID_PART = re.compile(r"[A-Za-z0-9._-]+")
FEEDBACK_PART_CHARS = 40  # a campaign or list part longer than this is cut (Gmail reads a few short fields)
SENDER_ID_CHARS = (5, 15)  # Gmail's SenderId, the right-most field: stable, 5 to 15 characters
NO_AUTO_REPLIES = "OOF, AutoReply"  # Exchange and Outlook: no out-of-office or rule replies to a list


def list_headers(issue: RenderedIssue, config: Config, from_domain: str, *, test: bool = False) -> dict[str, str]:
    """List-Archive, Archived-At, List-Help and List-Subscribe where their pages exist, Feedback-ID unless
    turned off, and X-Auto-Response-Suppress."""
    headers = {**_web_headers(issue, config)}
    if config.send.feedback_id:
        headers["Feedback-ID"] = feedback_id(issue.slug, config, from_domain, test=test)
    headers["X-Auto-Response-Suppress"] = NO_AUTO_REPLIES
    return headers


def feedback_id(slug: str, config: Config, from_domain: str, *, test: bool = False) -> str:
    """``campaign:list:kind:SenderId`` for Gmail's feedback loop: groups of mail, never a reader."""
    campaign = _part(slug)
    mailing = _part(config.list_id or from_domain)
    kind = "test" if test else "newsletter"
    return f"{campaign}:{mailing}:{kind}:{config.send.feedback_sender_id or default_sender_id(from_domain)}"


def default_sender_id(from_domain: str) -> str:
    """The From domain without its last label, as an identifier of 5 to 15 characters."""
    name = _part(from_domain.rpartition(".")[0] or from_domain).replace(".", "-")[: SENDER_ID_CHARS[1]].strip("-")
    return name if len(name) >= SENDER_ID_CHARS[0] else f"{name}-news"[: SENDER_ID_CHARS[1]]


def _part(text: str) -> str:
    """``text`` as one Feedback-ID field: its letters, digits, dots, dashes and underscores, or (when it has
    others, such as a slug in Chinese) a short digest of it, so that no colon or space gets in."""
    if FEEDBACK_ID_PART.fullmatch(text) and len(text) <= FEEDBACK_PART_CHARS:
        return text
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _web_headers(issue: RenderedIssue, config: Config) -> dict[str, str]:
    """List-Archive (the web archive) and Archived-At (this issue's page) with base_url, List-Help (the
    archive) too, and List-Subscribe (serve's sign-up page) with serve's public_url."""
    headers: dict[str, str] = {}
    archive = f"{config.base_url.rstrip('/')}/"
    if config.base_url and issue.view_online_url and _header_safe(archive, issue.view_online_url):
        headers.update({"List-Archive": f"<{archive}>", "Archived-At": f"<{issue.view_online_url}>"})
        headers["List-Help"] = f"<{archive}>"
    sign_up = f"{config.serve.public_url.rstrip('/')}/subscribe"
    if config.serve.public_url and _header_safe(sign_up):
        headers["List-Subscribe"] = f"<{sign_up}>"
    return headers


def _header_safe(*urls: str) -> bool:
    """A header can carry each URL as it is (the links in the body still can when not)."""
    return all(url.isascii() and url.isprintable() and " " not in url for url in urls)

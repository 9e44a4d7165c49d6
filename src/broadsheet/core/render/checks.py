"""The warnings every build prints (lint goes further)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..config import Config
from ..content import Issue
from .model import RenderedIssue

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail clips a message whose HTML is larger than about 102 KB
SUBJECT_LIMIT = 78
HTTP_LINK = re.compile(r"""(?:href|src)\s*=\s*["'](http://[^"']+)""", re.IGNORECASE)


def html_size(rendered: RenderedIssue) -> int:
    """Bytes of the email's HTML as sent (placeholders count roughly as their filled length)."""
    return len(rendered.html.encode("utf-8"))


def build_warnings(rendered: RenderedIssue, issue: Issue, config: Config) -> Iterator[str]:
    where = issue.main_file
    if not issue.preheader:
        yield f"{where}: no preheader: inboxes will show the first text of the email instead (add preheader: …)"
    if len(issue.subject) > SUBJECT_LIMIT:
        yield f"{where}: subject is {len(issue.subject)} characters, over {SUBJECT_LIMIT}: inboxes will cut it"
    if issue.draft:
        yield f"{where}: the issue is marked draft: true"
    if not issue.articles and issue.file is None:  # a sequence's step is one short text
        yield f"{issue.folder / 'articles'}: no articles: the issue holds only its introduction (add articles/01-….md)"
    for url in sorted(set(HTTP_LINK.findall(rendered.html))):
        yield f"{_source_of(url, issue, config)}: insecure http:// link {url} (use https://)"
    size = html_size(rendered)
    if size > GMAIL_CLIP_BYTES:
        yield f"{rendered.slug}: HTML is {size / 1024:.1f} KB, over Gmail's clipping limit of 102 KB (shorten the issue)"
    if issue.images and not config.base_url:
        yield f"{config.path or 'broadsheet.toml'}: base_url is not set: local images will not load in inboxes"


def _source_of(url: str, issue: Issue, config: Config) -> str:
    """file:line of the Markdown (or the config) that holds ``url``."""
    for path in [issue.main_file, *(a.source for a in issue.articles), *filter(None, [config.path])]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if url in line:
                return f"{path}:{number}"
    return str(issue.folder)

"""Lint: what will break, clip or land in spam, found before sending.

``lint_rendered(rendered, issue, config)`` checks a built issue; ``lint_issue(folder, config)`` builds
and checks one. Each returns :class:`Finding` objects, errors first.
"""

from __future__ import annotations

from pathlib import Path

from ..compose.alignment import Alignment, dkim_alignment
from ..compose.fields import personal_fields, sample_subscriber
from ..compose.templates import PersonalTemplates
from ..compose.unsubscribe import UnsubscribeLinks, is_personal
from ..config import Config
from ..content.model import Issue
from ..errors import ConfigError
from ..render.model import RenderedIssue
from .brand import brand_findings
from .document import parse_email
from .findings import Finding, counts, ordered, summary, to_json
from .rules import RULES, LintContext, check_mjml
from .sources import SourceIndex
from .validator import HOW_TO_INSTALL, find_validator

__all__ = [
    "Finding",
    "lint_rendered",
    "lint_issue",
    "lint_mjml",
    "find_validator",
    "HOW_TO_INSTALL",
    "counts",
    "ordered",
    "summary",
    "to_json",
    "sample_parts",
]


def lint_rendered(
    rendered: RenderedIssue,
    issue: Issue,
    config: Config,
    *,
    html: str | None = None,
    text: str | None = None,
    unsubscribe_url: str | None = None,
    validate_mjml: bool = True,
    subscriber_fields: frozenset[str] | None = None,
) -> list[Finding]:
    """Check a built issue. ``html``, ``text`` and ``unsubscribe_url`` are one recipient's (default: the
    sample subscriber's, filled without compose). ``subscriber_fields``: what merge tags may name (the
    command reads them: ``store.recipients.audience_fields``); None leaves merge tags' fields unchecked.

    ``validate_mjml=False`` skips the (slow, external) MJML validator, e.g. for a quick preview pass.
    """
    if html is None or text is None or unsubscribe_url is None:
        sample_html, sample_text, sample_unsubscribe = sample_parts(rendered, config)
        html = sample_html if html is None else html
        text = sample_text if text is None else text
        unsubscribe_url = sample_unsubscribe if unsubscribe_url is None else unsubscribe_url
    context = LintContext(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=html,
        text=text,
        mjml=rendered.mjml,
        document=parse_email(html),
        sources=_sources(issue, config),
        issue_folder=issue.folder,
        issue_file=issue.main_file,
        issue_id=issue.id,
        config_file=config.path,
        postal_address=config.footer.postal_address,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_personal=is_personal(config.unsubscribe_url),
        published_images=dict(rendered.images),
        image_sources=_image_sources(rendered, issue, config),
        subscriber_fields=subscriber_fields,
        local_images=tuple(
            dict.fromkeys(
                [*(path for _, path in rendered.images), *(image.path for image in issue.images if image.path)]
            )
        ),
        validator=find_validator(config.root) if validate_mjml else None,
        mjml_name=f"{config.output_dir}/{rendered.slug}/email.mjml",
        alignment=_alignment(config),
    )
    return ordered([*(finding for rule in RULES for finding in rule(context)), *brand_findings(config, html)])


def _alignment(config: Config) -> Alignment | None:
    """The DKIM alignment of a send over the configured transport (None: ``from`` is no address, which the
    composer reports)."""
    try:
        return dkim_alignment(config, config.send.transport)
    except ConfigError:
        return None


def lint_mjml(rendered: RenderedIssue, issue: Issue, config: Config) -> list[Finding]:
    """Only the MJML validator's findings (the preview runs it after the page has reloaded)."""
    context = LintContext(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html="",
        text="",
        mjml=rendered.mjml,
        document=parse_email(""),
        sources=_sources(issue, config),
        issue_folder=issue.folder,
        validator=find_validator(config.root),
        mjml_name=f"{config.output_dir}/{rendered.slug}/email.mjml",
    )
    return list(check_mjml(context))


def _image_sources(rendered: RenderedIssue, issue: Issue, config: Config) -> dict[str, Path]:
    """Each published image's name under images/ → the file the editor wrote (the logo's from the config)."""
    from ..render.build import logo_file

    sources = {image.src: image.path for image in issue.images if image.path}
    logo = logo_file(config)
    return sources | {name: logo for name, _ in rendered.images if name not in sources and logo is not None}


def _sources(issue: Issue, config: Config) -> SourceIndex:
    return SourceIndex.for_issue(
        issue.folder, [issue.main_file, *(a.source for a in issue.articles)], config.theme_dir, config.path
    )


def lint_issue(
    issue_dir: Path, config: Config, *, validate_mjml: bool = True, subscriber_fields: frozenset[str] | None = None
) -> list[Finding]:
    """Read and build the issue in ``issue_dir``, then lint it (build errors raise as usual)."""
    from ..render.build import read_and_build

    issue, rendered = read_and_build(issue_dir, config)
    return lint_rendered(rendered, issue, config, validate_mjml=validate_mjml, subscriber_fields=subscriber_fields)


def sample_parts(rendered: RenderedIssue, config: Config) -> tuple[str, str, str]:
    """(html, text, unsubscribe_url) of the issue personalised for the config's sample subscriber,
    with the fields a real send gives the templates (``compose.fields``)."""
    subscriber = sample_subscriber(config)
    unsubscribe = sample_unsubscribe_url(config, subscriber.email)
    html, text = (
        "".join(pieces) for pieces in PersonalTemplates(rendered).render(personal_fields(subscriber), unsubscribe)
    )
    return html, text, unsubscribe


def sample_unsubscribe_url(config: Config, email: str) -> str:
    """The unsubscribe link ``email`` would get (a stand-in token), or the mailto: link, or ''."""
    links = UnsubscribeLinks(config, token_secret="lint-sample")  # noqa: S106 -- a stand-in: lint never sends
    return links.url(email) if config.unsubscribe_url else links.mailto_url

"""The lint rules. Each takes the :class:`LintContext` and yields :class:`Finding` objects."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..compose.alignment import Alignment
from ..content.markdown import CONTENT_WIDTH, PHONE_CONTENT_WIDTH
from ..content.scaffold import find_starter_text
from ..render.checks import GMAIL_CLIP_BYTES, SUBJECT_LIMIT
from .colour import contrast, hex_of
from .components import check_components
from .css_support import located, unsupported_in_markdown, unsupported_in_stylesheet
from .document import EmailDocument, Img, collapse, shorten
from .findings import Finding
from .mergetags import merge_tag_findings
from .sources import SourceIndex, display, text_needles
from .tables import table_widths
from .validator import validate

SIZE_WARNING_BYTES = 90 * 1024
PREHEADER_MAX = 100
INVISIBLE_CONTRAST = 1.5  # below this, text is effectively hidden: a spam signal
LOW_CONTRAST = 3.0  # WCAG minimum for large text
SAFE_SCHEMES = {"mailto", "tel", "sms"}
IMAGE_WARNING_BYTES = 200 * 1024  # one image, after optimisation
IMAGES_WARNING_BYTES = 1024 * 1024  # all of an issue's images


@dataclass
class LintContext:
    """Everything the rules look at, gathered once per lint."""

    subject: str
    preheader: str
    html: str  # the personalised HTML part
    text: str  # the personalised text part
    mjml: str
    document: EmailDocument
    sources: SourceIndex
    issue_folder: Path
    issue_file: Path | None = None  # issue.md, for subject and preheader lines
    issue_id: str | None = None  # front-matter id: the campaign's identity (None: the folder name stands in)
    config_file: Path | None = None
    postal_address: str = ""
    unsubscribe_url: str = ""
    unsubscribe_personal: bool = True  # unsubscribe_url names the reader ({token} or {email})
    local_images: tuple[Path, ...] = ()
    published_images: dict[str, Path] = field(default_factory=dict)  # name under images/ -> the file published
    image_sources: dict[str, Path] = field(default_factory=dict)  # name under images/ -> the file as written
    subscriber_fields: frozenset[str] | None = None  # what merge tags may name; None: the list is unreadable
    validator: Path | None = None
    mjml_name: str = "email.mjml"
    alignment: Alignment | None = None  # the DKIM alignment of a send over the configured transport
    extra: dict[str, object] = field(default_factory=dict)

    def where(self, *needles: str, fallback: str) -> str:
        """``file:line`` of the first needle found in the sources, else ``fallback``."""
        return self.sources.locate(*needles) or fallback

    def where_image(self, img: Img) -> str:
        """``file:line`` of the Markdown that shows ``img``: the n-th use of a file in the email is the n-th
        line naming it (an image in two articles is found in each), else the first needle found."""
        name = unquote(urlsplit(img.src).path.rsplit("/", 1)[-1])
        source = self.image_sources.get(name)
        if source is not None:
            n = sum(1 for other in self.document.images[: self._index(img)] if other.src == img.src)
            for needle in (f"{source.name})", f'{source.name}"', source.name):
                if found := self.sources.locate_nth(needle, n):
                    return found
        return self.where(*_image_needles(img.src), fallback=img.element)

    def _index(self, img: Img) -> int:
        return next(i for i, other in enumerate(self.document.images) if other is img)

    def issue_key(self, key: str) -> str:
        return self.sources.locate_key(self.issue_file, key) or display(self.issue_file or self.issue_folder)

    def config_key(self, key: str) -> str:
        leaf = key.rsplit(".", 1)[-1]
        found = self.sources.locate_key(self.config_file, leaf) if self.config_file else None
        return found or (f"{display(self.config_file)} [{key}]" if self.config_file else f"broadsheet.toml [{key}]")


Rule = Callable[[LintContext], Iterator[Finding]]


# Size ----------------------------------------------------------------------------------------------


def check_size(ctx: LintContext) -> Iterator[Finding]:
    """HTML bytes against Gmail's clipping limit: error above, warning within ~12 KB of it."""
    size = len(ctx.html.encode("utf-8"))
    where = f"HTML part ({size / 1024:.1f} KB)"
    if size > GMAIL_CLIP_BYTES:
        yield Finding(
            "html-size",
            "error",
            f"the HTML is {size / 1024:.1f} KB: Gmail clips messages over "
            f"102 KB and hides the rest, unsubscribe link included; shorten the issue",
            where,
        )
    elif size > SIZE_WARNING_BYTES:
        yield Finding(
            "html-size", "warning", f"the HTML is {size / 1024:.1f} KB, close to Gmail's 102 KB clipping limit", where
        )


# Tables --------------------------------------------------------------------------------------------


def check_table_width(ctx: LintContext) -> Iterator[Finding]:
    """A table wider than a phone's screen scrolls sideways in its box (where the mail app can), one wider than
    the column scrolls everywhere: said with the widest the theme shows."""
    for table in table_widths(ctx.html):
        if table.narrowest <= PHONE_CONTENT_WIDTH:
            continue
        needles = (f"| {table.first_cell} |", f"| {table.first_cell}", table.first_cell)  # a Markdown table's first row
        where = ctx.where(*needles, fallback=f"table ({table.first_cell})")
        shown = (
            f"wider than the {CONTENT_WIDTH} px the theme shows on any screen"
            if table.narrowest > CONTENT_WIDTH
            else f"the theme shows {CONTENT_WIDTH} px on a computer but {PHONE_CONTENT_WIDTH} px on a 320 px phone"
        )
        yield Finding(
            "table-width",
            "warning",
            f"a table of {table.columns} columns needs about {table.narrowest} px, {shown}: readers scroll it "
            "sideways (or, where the mail app cannot, it runs off the screen); use fewer or shorter columns, "
            "or split it",
            where,
        )


# Images --------------------------------------------------------------------------------------------


def check_image_alt(ctx: LintContext) -> Iterator[Finding]:
    for img in ctx.document.images:
        if _is_pixel(img.width, img.height):
            continue
        if img.alt is None or not img.alt.strip():
            state = "no alt attribute" if img.alt is None else "an empty alt text"
            yield Finding(
                "image-alt",
                "warning",
                f"image {_name(img.src)} has {state}: readers with images off see nothing; describe the image",
                ctx.where_image(img),
            )


def check_image_width(ctx: LintContext) -> Iterator[Finding]:
    for img in ctx.document.images:
        if img.width and img.width.removesuffix("px").isdigit():
            continue
        state = f'a width="{img.width}" attribute' if img.width else "no width attribute"
        yield Finding(
            "image-width",
            "warning",
            f"image {_name(img.src)} has {state}: Outlook needs a width "
            "in pixels or shows the image at its natural size",
            ctx.where_image(img),
        )


def check_image_url(ctx: LintContext) -> Iterator[Finding]:
    for img in ctx.document.images:
        scheme = urlsplit(img.src).scheme.lower()
        where = ctx.where_image(img)
        if not img.src:
            yield Finding("image-url", "error", "an image has no src", where)
        elif scheme == "http":
            yield Finding(
                "image-url", "warning", f"image {img.src} is not https: mail clients may block or warn about it", where
            )
        elif not scheme:
            yield Finding(
                "image-url",
                "error",
                f"image {img.src} has a relative URL that no inbox can load; "
                "set base_url in broadsheet.toml so images get absolute https URLs",
                where,
            )
        elif scheme not in ("https", "cid", "data"):
            yield Finding("image-url", "warning", f"image {shorten(img.src)} uses {scheme}: URLs", where)


def check_image_files(ctx: LintContext) -> Iterator[Finding]:
    """Local image files the issue uses, and relative image URLs, must exist."""
    reported: set[Path] = set()
    for img in ctx.document.images:
        parts = urlsplit(img.src)
        if parts.scheme or parts.netloc or not parts.path:
            continue
        if unquote(parts.path).removeprefix("images/") in ctx.published_images:
            continue  # the build's own images/ (a logo from assets/, say): its source file is checked below
        path = (ctx.issue_folder / unquote(parts.path)).resolve()
        if not path.is_file() and path not in reported:
            reported.add(path)
            yield Finding(
                "image-missing",
                "error",
                f"image file {img.src} does not exist",
                ctx.where(img.src, fallback=img.element),
            )
    for path in ctx.local_images:
        if not path.is_file() and path.resolve() not in reported:
            reported.add(path.resolve())
            yield Finding(
                "image-missing",
                "error",
                f"image file {display(path)} does not exist",
                ctx.where(path.name, fallback=display(path)),
            )


def check_image_weight(ctx: LintContext) -> Iterator[Finding]:
    """After optimisation, one image over 200 KB or all of them over 1 MB: slow on a phone, clipped by some clients."""
    total = 0
    for name, file in sorted(ctx.published_images.items()):
        try:
            size = file.stat().st_size
        except OSError:
            continue  # check_image_files reports it
        total += size
        if size > IMAGE_WARNING_BYTES:
            source = ctx.image_sources.get(name, file)
            yield Finding(
                "image-weight",
                "warning",
                f"image {source.name} is {size / 1024:.0f} KB after optimisation, "
                f"over {IMAGE_WARNING_BYTES // 1024} KB: crop it or make it smaller",
                ctx.where(f"{source.name})", f'{source.name}"', source.name, fallback=display(source)),
            )
    if total > IMAGES_WARNING_BYTES:
        yield Finding(
            "image-weight",
            "warning",
            f"the issue's images weigh {total / 1024 / 1024:.1f} MB after "
            f"optimisation, over {IMAGES_WARNING_BYTES // 1024 // 1024} MB: readers on a phone wait "
            "for them; use fewer or smaller images",
            display(ctx.issue_folder),
        )


def check_scaffold(ctx: LintContext) -> Iterator[Finding]:
    """Text `broadsheet new` or `init` wrote and nobody replaced: an error, so that `send` refuses it (build only
    prints it)."""
    for found in find_starter_text(ctx.sources.files):
        yield Finding(
            "scaffold",
            "error",
            f"{found.what} is still the placeholder `{found.by}` wrote: replace it",
            f"{display(found.path)}:{found.line}",
        )


# Links ---------------------------------------------------------------------------------------------


def check_link_urls(ctx: LintContext) -> Iterator[Finding]:
    """javascript:, empty, '#' and relative hrefs are errors; http and other schemes are warnings."""
    for link in ctx.document.links:
        if link.href is None:  # <a id="…">: an anchor, not a link
            continue
        href = link.href.strip()
        label = f'"{shorten(link.text, 40)}"' if link.text else link.element
        where = ctx.where(
            *([href] if len(href) > 2 else []), f"]({href})", *text_needles(link.text), fallback=link.element
        )
        scheme = urlsplit(href).scheme.lower()
        if scheme == "javascript":
            yield Finding(
                "link-javascript",
                "error",
                f"link {label} runs javascript:, which mail clients strip and spam filters punish",
                where,
            )
        elif href in ("", "#"):
            if UNSUBSCRIBE_WORDS.search(link.text):
                continue  # the unsubscribe link without an address: check_unsubscribe names the setting
            yield Finding("link-empty", "error", f"link {label} goes nowhere (href {href!r})", where)
        elif href.startswith("#"):
            continue
        elif scheme == "http":
            yield Finding("link-https", "warning", f"link {href} is not https", where)
        elif not scheme:
            yield Finding(
                "link-relative",
                "error",
                f"link {href} is relative and leads nowhere from an inbox; use an absolute https URL",
                where,
            )
        elif scheme not in ("https", *SAFE_SCHEMES):
            yield Finding("link-https", "warning", f"link {shorten(href)} uses {scheme}: URLs", where)


def check_duplicate_link_texts(ctx: LintContext) -> Iterator[Finding]:
    """One link text, several destinations: readers (and screen readers) cannot tell them apart."""
    targets: dict[str, dict[str, str]] = defaultdict(dict)
    for link in ctx.document.links:
        href = (link.href or "").strip()
        if link.text and href and not href.startswith("#"):
            targets[link.text.lower()].setdefault(href.rstrip("/"), href)
    for text, hrefs in targets.items():
        if len(hrefs) > 1:
            urls = ", ".join(list(hrefs.values())[:4])
            yield Finding(
                "link-duplicate-text",
                "warning",
                f'the link text "{shorten(text, 40)}" points to '
                f"{len(hrefs)} different URLs ({shorten(urls, 160)}); give each link its own words",
                ctx.where(*list(hrefs.values())[1:], fallback=f"<a>{shorten(text, 40)}</a>"),
            )


# Required parts ------------------------------------------------------------------------------------

UNSUBSCRIBE_WORDS = re.compile(r"unsubscribe|opt[ -]?out|abmelden|désinscri|desinscri|afmelden", re.I)


def check_unsubscribe(ctx: LintContext) -> Iterator[Finding]:
    for link in ctx.document.links:
        href = (link.href or "").strip()
        if not href or href == "#":
            continue
        if (ctx.unsubscribe_url and href == ctx.unsubscribe_url) or UNSUBSCRIBE_WORDS.search(link.text):
            return
    yield Finding(
        "unsubscribe",
        "error",
        "the body has no working unsubscribe link; set unsubscribe_url "
        "(or unsubscribe_mailto) in broadsheet.toml and keep {{ unsubscribe_url }} in the theme",
        ctx.config_key("unsubscribe_url"),
    )


def check_unsubscribe_address(ctx: LintContext) -> Iterator[Finding]:
    """An unsubscribe link that carries the recipient's address ({email}) looks like phishing to spam
    filters (SpamAssassin GB_CUSTOM_HTM_URI) and leaks the address into logs."""
    url = ctx.unsubscribe_url
    if url.startswith("http") and ("@" in url or "%40" in url.lower()):
        yield Finding(
            "unsubscribe-address",
            "warning",
            "the unsubscribe link shows the recipient's address "
            "({email}): spam filters score that as phishing and it leaks into logs; set [serve] "
            "public_url and drop unsubscribe_url, or use {token} alone",
            ctx.config_key("unsubscribe_url"),
        )


def check_unsubscribe_personal(ctx: LintContext) -> Iterator[Finding]:
    """A link that is the same for every reader cannot tell who is leaving."""
    if ctx.unsubscribe_url.startswith("http") and not ctx.unsubscribe_personal:
        yield Finding(
            "unsubscribe-personal",
            "warning",
            "unsubscribe_url has neither {token} nor {email}: every reader gets the same link, which cannot tell "
            "who is leaving, and mailbox providers get no one-click unsubscribe (RFC 8058); drop it to use "
            "broadsheet serve's {public_url}/u/{token}, or add {token}",
            ctx.config_key("unsubscribe_url"),
        )


def check_postal_address(ctx: LintContext) -> Iterator[Finding]:
    address = ctx.postal_address.strip()
    if not address:
        yield Finding(
            "postal-address",
            "error",
            "no postal address: anti-spam laws (CAN-SPAM) require one in the footer; set footer.postal_address",
            ctx.config_key("footer.postal_address"),
        )
        return
    visible = collapse(ctx.document.visible_text).lower()
    first = collapse(re.split(r"[\n,]", address)[0]).lower()
    if first not in visible:
        yield Finding(
            "postal-address",
            "error",
            "the postal address is set but not shown in the footer; keep it in the theme",
            ctx.config_key("footer.postal_address"),
        )


def check_issue_id(ctx: LintContext) -> Iterator[Finding]:
    """An issue without ``id:`` is a campaign named by its folder: renamed after a send, it would mail
    everyone again (the same-subject check only looks back a week)."""
    if ctx.issue_file is not None and ctx.issue_id is None:
        yield Finding(
            "issue-id",
            "warning",
            "no id: renaming or moving this folder after a send would start a new campaign; add "
            'id: "<date>-<8 hex digits>" to the front matter (broadsheet new writes one) before the first send',
            display(ctx.issue_file),
        )


def check_preheader(ctx: LintContext) -> Iterator[Finding]:
    preheader = ctx.preheader.strip()
    if not preheader:
        yield Finding(
            "preheader",
            "warning",
            "no preheader: inboxes show the first words of the body instead; add preheader: to the front matter",
            ctx.issue_key("preheader"),
        )
    elif len(preheader) > PREHEADER_MAX:
        yield Finding(
            "preheader",
            "warning",
            f"the preheader is {len(preheader)} characters; inboxes show about {PREHEADER_MAX}",
            ctx.issue_key("preheader"),
        )


def check_subject(ctx: LintContext) -> Iterator[Finding]:
    subject = ctx.subject.strip()
    if not subject:
        yield Finding("subject", "error", "the issue has no subject", ctx.issue_key("subject"))
    elif len(subject) > SUBJECT_LIMIT:
        yield Finding(
            "subject",
            "warning",
            f"the subject is {len(subject)} characters, over {SUBJECT_LIMIT}: inboxes cut it",
            ctx.issue_key("subject"),
        )


# MJML ----------------------------------------------------------------------------------------------


def check_mjml(ctx: LintContext) -> Iterator[Finding]:
    """The official validator (strict) on the emitted MJML, when installed (see lint.validator)."""
    if ctx.validator is None or not ctx.mjml.strip():
        return
    lines = ctx.mjml.splitlines()
    for problem in validate(ctx.mjml, ctx.validator):
        source = lines[problem.line - 1].strip() if 0 < problem.line <= len(lines) else ""
        where = f"{ctx.mjml_name}:{problem.line} ({problem.tag})" if problem.line else ctx.mjml_name
        where = ctx.where(source, fallback=where) if len(source) > 12 and "{" not in source else where
        yield Finding("mjml-valid", "error", f"MJML validator: {problem.message}", where)


# Text part -----------------------------------------------------------------------------------------


def check_text_part(ctx: LintContext) -> Iterator[Finding]:
    if len(collapse(ctx.text)) < 20:
        yield Finding(
            "text-part",
            "error",
            "the plain-text part is missing or empty; spam filters and text-only readers need it",
            "text part",
        )
        return
    text = ctx.text.replace("&amp;", "&")
    seen: set[str] = set()
    for link in ctx.document.links:
        href = (link.href or "").strip()
        scheme = urlsplit(href).scheme.lower()
        if scheme not in ("http", "https", "mailto") or href in seen:
            continue
        seen.add(href)
        bare = href.removeprefix("mailto:") if scheme == "mailto" else href
        if bare not in text and bare.rstrip("/") not in text:
            yield Finding(
                "text-links",
                "warning",
                f"the text part lacks the link {shorten(href, 100)}",
                ctx.where(href, fallback=link.element),
            )


# Spam-prone patterns -------------------------------------------------------------------------------


def check_image_only(ctx: LintContext) -> Iterator[Finding]:
    images = [img for img in ctx.document.images if not _is_pixel(img.width, img.height)]
    if not images:
        return
    words = ctx.document.words
    if words < 25:
        yield Finding(
            "image-only",
            "error",
            f"the email is image-only ({len(images)} images, {words} words "
            "of text): spam filters distrust it and readers with images off see nothing",
            "HTML part",
        )
    elif words < 40 * len(images):
        yield Finding(
            "image-only",
            "warning",
            f"the email is nearly image-only ({len(images)} images, {words} words of text); add text",
            "HTML part",
        )


def check_subject_caps(ctx: LintContext) -> Iterator[Finding]:
    letters = [c for c in ctx.subject if c.isalpha()]
    if len(letters) >= 6 and sum(c.isupper() for c in letters) / len(letters) >= 0.7:
        yield Finding(
            "subject-caps", "warning", "the subject is in capitals, a classic spam signal", ctx.issue_key("subject")
        )


def check_contrast(ctx: LintContext) -> Iterator[Finding]:
    """Text whose colour is (nearly) the background's: hidden text is a spam signal, low contrast hurts."""
    for run in ctx.document.runs:
        ratio = contrast(run.colour, run.background)
        if ratio >= LOW_CONTRAST:
            continue
        invisible = ratio < INVISIBLE_CONTRAST
        message = (
            f'text "{shorten(run.text, 40)}" is {hex_of(run.colour)} on {hex_of(run.background)} '
            f"(contrast {ratio:.1f}:1): "
            + ("invisible text looks like spam to filters" if invisible else "hard to read; aim for 4.5:1")
        )
        yield Finding(
            "low-contrast",
            "error" if invisible else "warning",
            message,
            ctx.where(*text_needles(run.text), fallback=run.element),
        )


def check_css_support(ctx: LintContext) -> Iterator[Finding]:
    """CSS in the theme's style sheets or the issue's Markdown that Gmail, Outlook for Windows or Apple Mail
    ignore (caniemail), once per feature and file."""
    for path, lines in ctx.sources.files:
        if path.suffix == ".css":
            found = unsupported_in_stylesheet("\n".join(lines))
        elif path.suffix == ".md":
            found = unsupported_in_markdown("\n".join(lines))
        else:
            continue
        for feature in found:
            yield Finding(
                "css-support",
                "warning",
                f"{feature.title} is ignored by {' and '.join(feature.clients)} ({feature.url}):"
                " readers there get the issue without it; use CSS they support or accept the difference",
                located(Path(display(path)), lines, feature.needle),
            )


def check_dkim_alignment(ctx: LintContext) -> Iterator[Finding]:
    """[dkim] missing (and nothing else signs for the From domain) or its d= not aligned with From: a
    warning here; ``send`` refuses the latter unless --force, ``doctor`` checks the DNS behind it."""
    found = ctx.alignment
    if found is not None and found.status != "ok":
        fix = f"; {found.fix}" if found.fix else ""
        yield Finding("dkim-alignment", "warning", found.message + fix, ctx.config_key(found.key))


def check_merge_tags(ctx: LintContext) -> Iterator[Finding]:
    return merge_tag_findings(ctx.sources, ctx.subscriber_fields)


RULES: tuple[Rule, ...] = (
    check_size,
    check_image_alt,
    check_image_width,
    check_image_url,
    check_image_files,
    check_image_weight,
    check_link_urls,
    check_duplicate_link_texts,
    check_unsubscribe,
    check_unsubscribe_address,
    check_unsubscribe_personal,
    check_postal_address,
    check_issue_id,
    check_preheader,
    check_subject,
    check_mjml,
    check_text_part,
    check_image_only,
    check_table_width,
    check_subject_caps,
    check_contrast,
    check_components,
    check_merge_tags,
    check_scaffold,
    check_css_support,
    check_dkim_alignment,
)


def _image_needles(src: str) -> tuple[str, ...]:
    """Search strings for an image: its URL, its file name as a Markdown or HTML image (before a front-matter
    ``image:`` line holding the same file), its file name, the name before build prefixed it."""
    name = unquote(urlsplit(src).path.rsplit("/", 1)[-1])
    return src, f"{name})", f'{name}"', name, name.removeprefix("logo-")


def _name(src: str) -> str:
    return shorten(unquote(urlsplit(src).path.rsplit("/", 1)[-1]) or src, 60)


def _is_pixel(width: str | None, height: str | None) -> bool:
    """A 1x1 tracking pixel or spacer, which needs no alt text and counts as no image."""
    return bool(width and height and width.strip("px") in ("0", "1") and height.strip("px") in ("0", "1"))

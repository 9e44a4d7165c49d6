"""Issue folder → RenderedIssue: Jinja2 fills the theme, MRML compiles once, premailer inlines once."""

from __future__ import annotations

import shutil
import traceback
from html import unescape as html_unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.exceptions import SecurityError

from ..config import Config
from ..content import Issue
from ..content.images import ImageProblem, check_local_image, image_size, published_src, unique_name
from ..content.markdown import PHONE_CONTENT_WIDTH
from ..content.optimise import CACHE_FOLDER, Optimised, max_width_for, optimise
from ..content.sequence import read_content
from ..content.text import LinkRegistry
from ..errors import BroadsheetError, ConfigError, ContentError, TemplateError, one_line
from .buttons import with_outlook_buttons
from .checks import build_warnings
from .compile import compile_mjml, inline_css
from .links import unsubscribe_mailto
from .model import RenderedIssue
from .palette import palette_of
from .placeholders import PlaceholderTable
from .theme import HTML_TEMPLATE, TEXT_TEMPLATE, Theme, ThemeLimit, limited, load_theme

REMOTE = ("http://", "https://")


def build_issue(issue_dir: Path, config: Config, *, issue: Issue | None = None) -> RenderedIssue:
    """Read and render one issue; nothing is written (see write_build)."""
    issue = issue or read_content(Path(issue_dir), config)
    theme = load_theme(config.theme_dir)
    logo_src, logo_image = _logo(config, issue)
    view_online_url = web_address(config.base_url, issue.slug)
    table = PlaceholderTable()
    palette = palette_of(config.brand)
    context = {
        **_context(with_outlook_buttons(issue, palette), config, table, logo_src),
        "palette": palette,
        "logo_height": _logo_height(config),
    }
    mjml_source = table.merge_tags(_render(theme.environment, HTML_TEMPLATE, context, table))
    html = inline_css(compile_mjml(mjml_source, fonts=theme.fonts, where=f"{theme.folder / HTML_TEMPLATE}"))
    _check_survived(mjml_source, html, table, config, where=f"{theme.folder / HTML_TEMPLATE}")
    text = table.merge_tags(_render(theme.text_environment, TEXT_TEMPLATE, context, table))
    web_values = {"view_online_url": view_online_url, "unsubscribe_url": _web_unsubscribe(config)}
    images = tuple((image.src, image.file or image.path) for image in issue.images if image.path) + logo_image
    rendered = RenderedIssue(
        slug=issue.slug,
        title=issue.title,
        subject=issue.subject,
        preheader=issue.preheader,
        mjml=table.to_jinja(mjml_source),
        html=table.to_jinja(html),
        text=table.to_jinja(text),
        web_html=table.fill(html, web_values),
        view_online_url=view_online_url,
        images=images,
    )
    return _with_warnings(rendered, issue, config)


def web_address(base_url: str, slug: str) -> str:
    """The issue's page in the web archive (``broadsheet publish`` writes ``<slug>/index.html``); "" without base_url."""
    return f"{base_url.rstrip('/')}/{quote(slug)}/" if base_url else ""


def read_and_build(issue_dir: Path, config: Config) -> tuple[Issue, RenderedIssue]:
    """The issue model and its rendering: what build, send, lint and preview all start from."""
    issue = read_content(Path(issue_dir), config)
    return issue, build_issue(issue_dir, config, issue=issue)


def write_build(rendered: RenderedIssue, out_dir: Path) -> Path:
    """Write ``out_dir/<slug>/`` (email.mjml, email.html, email.txt, web.html, images/); return it."""
    target = Path(out_dir) / rendered.slug
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, content in (
            ("email.mjml", rendered.mjml), ("email.html", rendered.html),
            ("email.txt", rendered.text), ("web.html", rendered.web_html),
        ):  # fmt: skip
            (target / name).write_text(content, encoding="utf-8")
        if rendered.images:
            (target / "images").mkdir(exist_ok=True)
        for name, source in rendered.images:
            destination = target / "images" / name
            if not destination.exists() or destination.stat().st_size != source.stat().st_size:  # names hash the bytes
                shutil.copy2(source, destination)
        _remove_stale_images(target / "images", {name for name, _ in rendered.images})
    except OSError as exc:
        raise ContentError(
            f"cannot write the build: {exc.strerror}",
            where=str(exc.filename or target),
            fix="choose another --out folder, or make this one writable",
        ) from None
    return target


def _remove_stale_images(folder: Path, current: set[str]) -> None:
    """Images an earlier build of this issue wrote that this one does not use (a changed image has a new name)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name not in current and path.is_file() and not path.is_symlink():
                path.unlink()


def _context(issue: Issue, config: Config, table: PlaceholderTable, logo_src: str) -> dict[str, Any]:
    links = LinkRegistry()
    links.urls.extend(issue.links)
    return {
        "issue": issue,
        "config": config,
        "brand": config.brand,
        "footer": config.footer,
        "logo_src": logo_src,
        "link_references": links.references(),
        "subscriber": table.subscriber(),
        "unsubscribe_url": table.make("unsubscribe_url"),
        "view_online_url": table.make("view_online_url"),
    }


def _render(environment: jinja2.Environment, name: str, context: dict[str, Any], table: PlaceholderTable) -> str:
    """Render a theme template, reporting template mistakes as file:line."""
    environment.filters["default"] = table.default_filter(jinja2.filters.do_default)
    environment.filters["email_only"] = table.email_only
    try:
        with limited():
            return environment.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or name}:{exc.lineno}"
        raise TemplateError(
            f"template syntax error: {exc.message}", where=where, fix="fix the {{ }} or {% %} on that line of the theme"
        ) from None
    except jinja2.TemplateNotFound as exc:
        loader = environment.loader
        if isinstance(loader, jinja2.ChoiceLoader):  # the theme's folder first, then broadsheet's shared files
            loader = loader.loaders[0]
        folder = loader.searchpath[0] if isinstance(loader, jinja2.FileSystemLoader) else "the theme"
        raise TemplateError(
            f"template not found: {exc.name}",
            where=_template_frame(exc) or folder,
            fix=f"add {exc.name} to {folder} or fix the name",
        ) from None
    except SecurityError as exc:
        raise TemplateError(
            f"the theme tried something unsafe: {exc}",
            where=_template_frame(exc) or name,
            fix="themes may only show values: remove that expression from the theme",
        ) from None
    except (jinja2.UndefinedError, TypeError, AttributeError) as exc:
        raise TemplateError(
            f"template error: {exc}",
            where=_template_frame(exc) or name,
            fix="check the name against the issue, article, config, brand and footer fields",
        ) from None
    except (ThemeLimit, RecursionError, MemoryError, OverflowError) as exc:  # range(10**8), a macro calling itself
        raise TemplateError(
            f"the theme does too much: {exc}",
            where=_template_frame(exc) or name,
            fix="a theme shows the issue's values: no long loops, deep recursion or huge values",
        ) from None
    except BroadsheetError:
        raise
    except Exception as exc:  # 1/0, int("x"), …: whatever a theme's expression raises is the theme's mistake
        raise TemplateError(
            f"template error: {type(exc).__name__}: {exc}", where=_template_frame(exc) or name, fix="fix that line"
        ) from None


def _template_frame(exc: BaseException) -> str | None:
    """file:line of the innermost template frame of a render error."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def logo_file(config: Config) -> Path | None:
    """The brand logo's local file, checked like issue images; None when there is no logo or it is a web address."""
    logo = config.brand.logo
    if not logo or logo.startswith(REMOTE):
        return None
    path = config.resolve(logo)
    try:
        check_local_image(path, [config.root])
    except ImageProblem as exc:
        raise ConfigError(f"logo {exc.problem}: {logo}", where=config.where("brand.logo"), fix=exc.fix) from None
    return path


def _logo(config: Config, issue: Issue) -> tuple[str, tuple[tuple[str, Path], ...]]:
    """The logo's src, and (name under images/, file) when it is a local file."""
    path = logo_file(config)
    if path is None:
        return config.brand.logo, ()
    ready = optimised_logo(config, path, width=config.brand.logo_width)
    name = unique_name(f"logo-{ready.name}", {image.src for image in issue.images})
    return published_src(config.base_url, issue.slug, name), ((name, ready.file),)


def _logo_height(config: Config) -> int:
    """The logo's height at ``brand.logo_width`` in its own ratio, for a local logo narrow enough never to be
    shrunk by a phone's screen (a fixed height would distort it); 0 otherwise."""
    path = logo_file(config)
    if path is None or config.brand.logo_width > PHONE_CONTENT_WIDTH:
        return 0
    width, height = image_size(path)
    return max(1, round(config.brand.logo_width * height / width))


def optimised_logo(config: Config, path: Path, *, width: int) -> Optimised:
    """The logo's published copy (re-encoded: no metadata) for showing ``width`` CSS pixels wide at most."""
    try:
        return optimise(path, max_width=max_width_for(width), cache=config.root / CACHE_FOLDER)
    except ImageProblem as exc:
        raise ConfigError(
            f"logo {exc.problem}: {config.brand.logo}", where=config.where("brand.logo"), fix=exc.fix
        ) from None


def _check_survived(mjml_source: str, html: str, table: PlaceholderTable, config: Config, *, where: str) -> None:
    """The unsubscribe link and the postal address the theme wrote must reach the compiled email
    (HTML nested too deep, for one, makes lxml drop everything after it without a word)."""
    required = [(m, "the unsubscribe link") for m, p in table.entries.items() if p.expression == "unsubscribe_url"]
    if address := config.footer.postal_address.strip():
        required.append((address, "the postal address"))
        mjml_source, html = html_unescape(mjml_source), html_unescape(html)
    for text, what in required:
        if text in mjml_source and text not in html:
            raise TemplateError(
                f"{what} is lost when the email is compiled",
                where=where,
                fix="check the theme and the issue for HTML nested too deep or left open",
            )


def _web_unsubscribe(config: Config) -> str:
    """The browser version has no recipient: link to the unsubscribe page without a token."""
    if config.unsubscribe_url:
        page = config.unsubscribe_url.split("?")[0]
        return page[: page.rfind("/", 0, page.find("{")) + 1] if "{" in page else page
    return unsubscribe_mailto(config.unsubscribe_mailto)


def _with_warnings(rendered: RenderedIssue, issue: Issue, config: Config) -> RenderedIssue:
    from dataclasses import replace

    warnings = (*issue.notes, *build_warnings(rendered, issue, config))
    return replace(rendered, warnings=tuple(one_line(warning) for warning in warnings))  # a file name may hold \n


__all__ = ["build_issue", "write_build", "web_address", "Theme"]

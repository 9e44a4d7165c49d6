"""serve's HTML pages: Jinja2 templates (autoescaped) dressed in the newsletter's name, logo, colours
and language. Inline CSS only, nothing from other hosts, no JavaScript."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from broadsheet.core.config import Config
from broadsheet.core.errors import ConfigError
from broadsheet.core.lint.colour import contrast, hex_of, parse_colour
from broadsheet.core.render.build import logo_file, optimised_logo

from .http import Response
from .security import style_hash
from .texts import texts_for

TEMPLATES = Path(__file__).parent / "templates"
WHITE = (255, 255, 255)


class PageStyle:
    """The colours (checked, as #rrggbb), the logo file served at /brand/logo, and the name."""

    def __init__(self, config: Config):
        self.name = config.name
        self.primary = _colour(config.brand.primary_color, "#1f4e79")
        self.background = _colour(config.brand.background_color, "#f2f4f7")
        self.text = _colour(config.brand.text_color, "#1a1a1a")
        primary = parse_colour(self.primary) or WHITE
        self.on_primary = "#ffffff" if contrast(primary, WHITE) >= 4.5 else "#000000"
        self.logo_alt = config.brand.logo_alt or config.name
        self.logo_width = min(config.brand.logo_width, 320)
        self.logo_file = _logo_file(config)
        self.remote_logo = config.brand.logo if config.brand.logo.startswith("https://") else ""

    def logo_type(self) -> str:
        return mimetypes.guess_type(self.logo_file.name)[0] or "application/octet-stream" if self.logo_file else ""

    def css(self) -> str:
        return (
            f"body{{margin:0;background:{self.background};color:{self.text};"
            "font:17px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}"
            "main{max-width:34rem;margin:2.5rem auto;padding:2rem;background:#ffffff;border-radius:8px}"
            f"header{{border-bottom:3px solid {self.primary};margin-bottom:1.5rem;padding-bottom:1rem}}"
            f"h1{{font-size:1.5rem;margin:0 0 1rem;color:{self.text}}}"
            "label{display:block;font-weight:600;margin:1rem 0 .25rem}"
            "input[type=email],input[type=text]{width:100%;box-sizing:border-box;padding:.6rem;font:inherit;"
            "border:1px solid #6b7280;border-radius:4px}"
            f"button{{margin-top:1.25rem;padding:.7rem 1.4rem;font:inherit;font-weight:600;border:0;"
            f"border-radius:4px;background:{self.primary};color:{self.on_primary};cursor:pointer}}"
            f"button:focus,input:focus{{outline:3px solid {self.primary};outline-offset:2px}}"
            ".trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
            ".note{font-size:.95rem;color:#374151}.error{color:#b00020;font-weight:600}"
            "img{max-width:100%;height:auto}"
        )


class Pages:
    """Renders a page by name with the brand and the texts of the config's language."""

    def __init__(self, config: Config):
        self.style = PageStyle(config)
        self.language, self.texts = texts_for(config.language)
        self.css = self.style.css()
        self.style_hash = style_hash(self.css)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
        )
        css = Markup(self.css)  # noqa: S704 -- CSS built by PageStyle from validated config
        self.env.globals.update(brand=self.style, css=css, lang=self.language, t=self.text)

    def text(self, key: str, **values: str) -> Markup:
        """One text with its {placeholders} filled, every value escaped and shown in bold."""
        filled = {name: Markup("<strong>{}</strong>").format(value) for name, value in values.items()}
        return escape(self.texts[key]).format(**filled)

    def render(self, template: str, status: int = 200, **values: object) -> Response:
        html = self.env.get_template(template).render(list=self.style.name, **values)
        return Response(html, status)

    def message(self, status: int, title: str, text: str = "", **values: str) -> Response:
        """A page with a title and one paragraph (errors, expired links, …)."""
        return self.render("message.html", status, title=title, text=text, values=values)


def mask_address(address: str) -> str:
    """``jane.doe@example.com`` → ``ja•••e@example.com``: enough to recognise, not to harvest."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "•••"
    keep = 2 if len(local) > 4 else 1
    masked = local[:keep] + "•••" + (local[-1] if len(local) > 2 else "")
    return f"{masked}@{domain}"


def _colour(value: str, fallback: str) -> str:
    parsed = parse_colour(value)
    return hex_of(parsed) if parsed else fallback


def _logo_file(config: Config) -> Path | None:
    """The logo's re-encoded copy, as build and publish use it: the file as it is would carry its metadata."""
    try:
        path = logo_file(config)
        return optimised_logo(config, path, width=min(config.brand.logo_width, 320)).file if path else None
    except ConfigError:  # lint and build name the problem; serve's pages show the newsletter's name instead
        return None

"""The issue's per-recipient Jinja templates, compiled once (sandboxed): HTML autoescaped, text not."""

from __future__ import annotations

import types
from collections.abc import Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import TemplateError
from ..render.model import RenderedIssue
from .headers import RecipientRejected


class PersonalTemplates:
    """``render(...)`` gives one recipient's html and text pieces from the templates compiled once."""

    def __init__(self, issue: RenderedIssue):
        self.view_online_url = issue.view_online_url
        self.html = _compile(issue, "html", autoescape=True)
        self.text = _compile(issue, "text", autoescape=False)

    def render(
        self, fields: Mapping[str, str], unsubscribe_url: str, clicks: object = None
    ) -> tuple[list[str], list[str]]:
        """The (html, text) pieces as Jinja yields them; join each for the whole part. ``clicks``: this
        reader's counted links (compose.clicks.ReaderClicks), only when clicks are counted per subscriber.

        Empty fields are left out, so that ``| default(...)`` applies to them too.
        """
        context: dict[str, object] = {
            "subscriber": {key: value for key, value in fields.items() if value},
            "unsubscribe_url": unsubscribe_url,
            "view_online_url": self.view_online_url,
        }
        if clicks is not None:
            context["clicks"] = clicks
        try:
            return list(self.html.generate(context)), list(self.text.generate(context))
        except jinja2.TemplateError as exc:
            raise RecipientRejected(f"the issue template fails for this subscriber: {exc}") from None
        except Exception as exc:
            raise RecipientRejected(
                f"the issue template fails for this subscriber: {type(exc).__name__}: {exc}"
            ) from None

    def literals(self) -> set[str]:
        """The literal strings of both compiled templates: the text every recipient gets."""
        return _literals(self.html) | _literals(self.text)


def _literals(template: jinja2.Template) -> set[str]:
    """String constants of the template's compiled code (an optimisation: missing one costs only time)."""
    codes = [template.root_render_func.__code__, *(block.__code__ for block in template.blocks.values())]
    found: set[str] = set()
    while codes:
        for constant in codes.pop().co_consts:
            if isinstance(constant, str):
                found.add(constant)
            elif isinstance(constant, types.CodeType):
                codes.append(constant)
    return found


def _compile(issue: RenderedIssue, part: str, *, autoescape: bool) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True, cache_size=0)
    try:
        return environment.from_string(getattr(issue, part))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"the rendered {part} is not a valid template: {exc.message}",
            where=f"issue {issue.slug} ({part}):{exc.lineno}",
            fix="rebuild the issue; content must reach compose with template syntax escaped",
        ) from None

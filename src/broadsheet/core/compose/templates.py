"""The issue's per-recipient Jinja templates, compiled once (sandboxed): HTML autoescaped, text not."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

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
        self._globals = (dict(self.html.globals), dict(self.text.globals))  # Jinja's are a ChainMap

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
            return _pieces(self.html, self._globals[0], context), _pieces(self.text, self._globals[1], context)
        except jinja2.TemplateError as exc:
            raise RecipientRejected(f"the issue template fails for this subscriber: {exc}") from None
        except Exception as exc:
            raise RecipientRejected(
                f"the issue template fails for this subscriber: {type(exc).__name__}: {exc}"
            ) from None

    def literals(self) -> set[str]:
        """The literal strings of both compiled templates: the text every recipient gets."""
        return _literals(self.html) | _literals(self.text)


def _pieces(template: jinja2.Template, globals_: dict[str, Any], context: dict[str, object]) -> list[str]:
    """What ``template.generate(context)`` yields, with the globals merged from a dict made once instead of
    from the template's ChainMap on every call (twice: the context and its names)."""
    environment = template.environment
    jinja_context = environment.context_class(
        environment, {**globals_, **context}, template.name, template.blocks, globals=globals_
    )
    return list(template.root_render_func(jinja_context))


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

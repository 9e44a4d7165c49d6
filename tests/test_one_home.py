"""Logic that once lived in several places and drifted, now with one home each."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from broadsheet.core.compose import Composer
from broadsheet.core.compose.fields import sample_subscriber
from broadsheet.core.config import Config, Preview, load_config
from broadsheet.core.lint import sample_parts
from broadsheet.core.render import build_issue
from broadsheet.core.render.links import unsubscribe_mailto

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "broadsheet.toml")


@pytest.mark.parametrize(
    ("configured", "link"),
    [
        ("leave@example.org", "mailto:leave@example.org?subject=unsubscribe"),
        ("mailto:leave@example.org", "mailto:leave@example.org?subject=unsubscribe"),
        ("mailto:leave@example.org?subject=stop", "mailto:leave@example.org?subject=stop"),
        ("", ""),
    ],
)
def test_one_mailto_link_for_every_configured_form(configured: str, link: str) -> None:
    assert unsubscribe_mailto(configured) == link


def test_the_browser_version_links_a_configured_mailto_url_once(config: Config) -> None:
    mailto_only = replace(
        config,
        unsubscribe_url="",
        unsubscribe_mailto="mailto:leave@example.org",
        serve=replace(config.serve, public_url=""),
    )
    web_html = build_issue(SAMPLE, mailto_only).web_html
    assert 'href="mailto:leave@example.org?subject=unsubscribe"' in web_html
    assert "mailto:mailto:" not in web_html and web_html.count("?subject=") == 1


def test_lint_sample_is_the_message_a_send_composes(config: Config) -> None:
    """No first_name in the sample: the send derives it from the name, and so does lint's sample."""
    config = replace(config, preview=Preview(sample_subscriber={"email": "sam@example.org", "name": "Sam Reader"}))
    rendered = build_issue(SAMPLE, config)
    html, text, unsubscribe = sample_parts(rendered, config)
    message = Composer(rendered, config, token_secret="lint-sample").compose(sample_subscriber(config))
    assert "Dear Sam," in html and "Dear Sam," in text
    assert (html, text) == (message.html, message.text)
    assert f"<{unsubscribe}>" in message.headers["List-Unsubscribe"]


def test_the_provider_facts_are_the_transports_own() -> None:
    """Each transport's class, batch size and credential come from broadsheet.core.providers."""
    from broadsheet.core.config import SECRET_ENV
    from broadsheet.core.providers import NOT_DELIVERING, PROVIDERS, delivers
    from broadsheet.delivery.transports import transport_class

    assert NOT_DELIVERING == ("outbox",) and not delivers("outbox") and delivers("ses")
    for name, provider in PROVIDERS.items():
        cls = transport_class(name)
        assert cls.max_batch == provider.max_batch
        assert cls.secret_env == (provider.secret_env or "")
        if provider.secret_env:
            assert SECRET_ENV[name] == provider.secret_env

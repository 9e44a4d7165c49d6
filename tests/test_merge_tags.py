"""Merge tags in Markdown: each reader's value (escaped in HTML), defaults, the greeting, lint, preview, feed."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from support.issues import write_issue

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer
from broadsheet.core.config import load_config
from broadsheet.core.render import build_issue
from broadsheet.data.store import Store
from broadsheet.faces.cli import main
from broadsheet.faces.preview import Preview

INTRO = 'Hi {{ subscriber.first_name | default("there") }}, greetings to {{subscriber.company}}.\n'
ARTICLE = (
    "---\ntitle: One\n---\nWe met {{ subscriber.first_name|default('friend') }} in {{ subscriber.city }}.\n\n"
    "Code stays: `{{ subscriber.city }}`; so does {{ 7*7 }} and {{ subscriber.city.upper() }}.\n"
)


def issue_with(project: Path, intro: str = INTRO, front: str = "", article: str = ARTICLE) -> Path:
    return write_issue(
        project, issue=f"---\ntitle: Tags\npreheader: p\n{front}---\n{intro}", articles={"01-one.md": article}
    )


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "merge-tag-tests-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")


def message_for(project: Path, folder: Path, **fields: str) -> email.message.EmailMessage:
    config = load_config(project / "broadsheet.toml")
    rendered = build_issue(folder, config)
    composer = Composer(rendered, config)
    subscriber = Subscriber(
        email=fields.get("email", "ann@example.com"),
        name=fields.get("name", ""),
        first_name=fields.get("first_name", ""),
        fields=fields,
    )
    return email.message_from_bytes(composer.compose(subscriber).raw, policy=email.policy.default)


def parts(message) -> tuple[str, str]:
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


def test_each_reader_gets_their_values_escaped_in_html(project):
    folder = issue_with(project)
    hostile = '<b onclick="x()">Acme & Co</b>'
    html, text = parts(message_for(project, folder, first_name="Ann", company=hostile, city="Leuven"))
    assert "Hi Ann, greetings to &lt;b onclick=&#34;x()&#34;&gt;Acme &amp; Co&lt;/b&gt;." in " ".join(html.split())
    assert "<b onclick" not in html
    assert "We met Ann in Leuven." in html
    assert f"Hi Ann, greetings to {hostile}." in " ".join(text.split()) and "We met Ann in Leuven." in text
    html, text = parts(message_for(project, folder, email="bo@example.com"))  # no first name, no company
    assert "Hi there, greetings to ." in " ".join(html.split()) and "We met friend in ." in html
    assert "Hi there, greetings to ." in " ".join(text.split())


def test_anything_else_with_braces_stays_literal(project):
    folder = issue_with(project)
    html, text = parts(message_for(project, folder, first_name="Ann", city="Leuven"))
    for part in (html, text):
        flat = " ".join(part.split())
        assert "{{ subscriber.city }}" in flat and "{{ 7*7 }}" in flat and "49" not in flat
        assert "{{ subscriber.city.upper() }}" in flat and "LEUVEN" not in flat


def test_the_browser_version_and_the_feed_show_the_defaults(project, tmp_path):
    folder = issue_with(project)
    rendered = build_issue(folder, load_config(project / "broadsheet.toml"))
    flat = " ".join(rendered.web_html.split())
    assert "Hi there, greetings to ." in flat and "bsmerge" not in rendered.web_html
    from broadsheet.core.content import read_issue
    from broadsheet.usecases.publish.reader import content_html, summary

    issue = read_issue(folder, load_config(project / "broadsheet.toml"))
    assert "Hi there" in content_html(issue) and "bsmerge" not in content_html(issue)
    assert "bsmerge" not in summary(issue)


@pytest.mark.parametrize(
    "front, expected",
    [
        ("", "Dear Ann,"),
        ("greeting: \"Hello {{ subscriber.first_name | default('friend') }}!\"\n", "Hello Ann!"),
    ],
)
def test_the_greeting_comes_from_the_front_matter(project, front, expected):
    folder = issue_with(project, intro="Intro.\n", front=front)
    html, text = parts(message_for(project, folder, first_name="Ann"))
    assert expected in html and expected in text


def test_an_empty_greeting_leaves_it_out(project):
    folder = issue_with(project, intro="Intro.\n", front='greeting: ""\n')
    html, text = parts(message_for(project, folder, first_name="Ann"))
    assert "Dear" not in html and "Dear" not in text and "Intro." in text


def lint_lines(project: Path, folder: Path, capsys) -> list[str]:
    capsys.readouterr()
    main(["--config", str(project / "broadsheet.toml"), "lint", str(folder), "--no-validator"])
    return capsys.readouterr().out.splitlines()


def test_lint_names_literal_braces_unknown_fields_and_mailchimp_tags(project, capsys):
    article = ARTICLE + (
        '\n{{ subscriber.shoe_size | default("42") }} and *|FNAME|*\n\n```\n{{ 1 + 1 }}\n```\n'
        "\n[Your page](https://example.org/p?u={{ subscriber.email }})\n"
    )
    folder = issue_with(project, article=article)
    lines = lint_lines(project, folder, capsys)
    found = [line for line in lines if "merge tag" in line or "shown literally" in line or "no subscriber" in line]
    source = "01-one.md"
    assert any(f"{source}:6" in line and "{{ 7*7 }} is shown literally" in line for line in found), found
    assert any(f"{source}:6" in line and "{{ subscriber.city.upper() }} is shown literally" in line for line in found)
    assert any(
        f"{source}:8" in line and "no subscriber has the field 'shoe_size'" in line and '"42"' in line for line in found
    ), found
    assert any(
        f"{source}:8" in line and "*|FNAME|*" in line and "{{ subscriber.first_name }}" in line for line in found
    )
    assert not any(f"{source}:11" in line for line in found)  # inside a code block
    assert any(f"{source}:14" in line and "not filled" in line for line in found), found
    assert not any("'company'" in line or "'city'" in line for line in found)  # columns of the list
    assert not any(f"{source}:4" in line for line in found)  # merge tags and a code span


def test_lint_reads_the_fields_from_the_store_when_send_would_mail_it(project, capsys):
    article = ARTICLE + "\n{{ subscriber.shoe_size }} and {{ subscriber.company }} and {{ subscriber.hat }}\n"
    folder = issue_with(project, article=article)
    with Store.for_project(project) as store:
        store.add("ann@example.org", name="Ann", fields={"shoe_size": "38"})
    out = "\n".join(lint_lines(project, folder, capsys))
    assert "field 'hat'" in out and "shoe_size" in out.split("the list has")[1], out
    assert "field 'shoe_size'" not in out  # a field of the store's subscribers
    assert "field 'company'" not in out  # a column of [send] list, which a send imports into the store


def test_preview_as_a_subscriber_shows_their_values(project):
    folder = issue_with(project)
    with Preview(
        folder, port=0, config_path=project / "broadsheet.toml", as_email="ann.peeters@example.com", watch=False
    ) as running:
        import urllib.request

        page = urllib.request.urlopen(running.url + "email.html", timeout=10).read().decode()
    flat = " ".join(page.split())
    assert "Hi Ann, greetings to Leuven Biotech NV." in flat and "We met Ann in Leuven." in flat


def test_send_test_as_a_subscriber_fills_their_values(project, monkeypatch):
    folder = issue_with(project)
    monkeypatch.chdir(project)
    assert (
        main(
            [
                "send",
                str(folder),
                "--transport",
                "outbox",
                "--test",
                "editor@example.net",
                "--as",
                "ann.peeters@example.com",
                "--force",
            ]
        )
        == 0
    )
    [copy] = list(project.glob("outbox/**/*.eml"))
    message = email.message_from_bytes(copy.read_bytes(), policy=email.policy.default)
    html, text = parts(message)
    assert "Hi Ann, greetings to Leuven Biotech NV." in " ".join(text.split())
    assert "We met Ann in Leuven." in html


def test_a_default_is_text_in_every_part(project):
    folder = issue_with(project, intro='Hi {{ subscriber.first_name | default("<b>you</b> & co") }}.\n')
    rendered = build_issue(folder, load_config(project / "broadsheet.toml"))
    assert "Hi &lt;b&gt;you&lt;/b&gt; &amp; co." in rendered.web_html
    html, text = parts(message_for(project, folder))
    assert "Hi &lt;b&gt;you&lt;/b&gt; &amp; co." in html and "Hi <b>you</b> & co." in text

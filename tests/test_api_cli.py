"""`broadsheet send` through the API transports, end to end against the local provider fakes."""

from __future__ import annotations

import email
import email.policy

import pytest
from support.providers import SECRET, api  # noqa: F401
from support.smtpd import configure, write_subscribers
from test_send_cli import ISSUE, cli, states

TABLES = {"mailgun": {"domain": "mg.example.org"}, "ses": {"region": "eu-west-1", "configuration_set": "news"}}


def use_fake(project, provider: str, url: str, **send) -> None:
    """Point the project's broadsheet.toml at the fake: [send] transport and the provider's table."""
    configure(project, send={"transport": provider, "list": "list.csv", **send})
    lines = [f"\n[{provider}]", f'base_url = "{url.rstrip("/")}"']
    lines += [f'{key} = "{value}"' for key, value in TABLES.get(provider, {}).items()]
    with open(project / "broadsheet.toml", "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.fixture
def sample(project, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.chdir(project)
    write_subscribers(project / "list.csv", 30)
    return project


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "ses", "resend"])
def test_a_test_copy_goes_through_every_provider(api, sample, provider, capsys):
    fake, transport = api(provider)
    use_fake(sample, provider, transport.base_url)
    assert cli(sample, "send", ISSUE, "--test", "editor@example.net") == 0
    assert "editor@example.net" in capsys.readouterr().out
    [got] = fake.delivered
    assert "editor@example.net" in got["to"]
    raw = got.get("raw")  # SES takes our whole message
    subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"] if raw else got["subject"]
    assert subject.startswith("[TEST]")
    assert states(sample) == {}  # a test copy is not journaled


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "ses", "resend"])
def test_a_whole_send_journals_everyone_as_sent_and_status_says_so(api, sample, provider, capsys):
    fake, transport = api(provider)
    use_fake(sample, provider, transport.base_url, connections=2)
    assert cli(sample, "send", ISSUE, "--yes") == 0
    assert set(states(sample).values()) == {"sent"} and len(states(sample)) == 30
    assert sorted(fake.recipients()) == sorted(states(sample))
    assert fake.calls == (30 if provider == "ses" else 1)  # one batch of 30, but SES takes one message a call
    assert cli(sample, "status", ISSUE) == 0
    out, err = capsys.readouterr()
    assert f"over {provider}" in out and "sent 30" in out
    assert SECRET not in out + err


def test_a_missing_token_stops_before_anything_is_journaled(api, sample, monkeypatch, capsys):
    fake, transport = api("postmark")
    use_fake(sample, "postmark", transport.base_url)
    monkeypatch.delenv("BROADSHEET_POSTMARK_TOKEN")
    assert cli(sample, "send", ISSUE, "--yes") == 2
    assert "BROADSHEET_POSTMARK_TOKEN" in capsys.readouterr().err
    assert fake.calls == 0 and not states(sample)


def test_a_second_identical_test_copy_through_resend_is_delivered_too(api, sample, capsys):
    fake, transport = api("resend")
    use_fake(sample, "resend", transport.base_url)
    assert cli(sample, "send", ISSUE, "--test", "editor@example.net") == 0
    assert cli(sample, "send", ISSUE, "--test", "editor@example.net") == 0
    assert len(fake.delivered) == 2  # not the first answer replayed under the same Idempotency-Key

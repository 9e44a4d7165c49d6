"""doctor's credentials check: SMTP logs in over STARTTLS against aiosmtpd and sends no MAIL; each API answers
the harmless authenticated GET its provider documents, on the local fakes. No secret reaches a line."""

from __future__ import annotations

import dataclasses

import pytest
from support.providers import FAKES, SECRET, api  # noqa: F401
from support.smtpd import Sink, make_certificates, password_checker, smtp_server

from broadsheet.core.config import Config, Smtp
from broadsheet.usecases.doctor.reach import credentials_check

PASSWORD = "smtp-Pa55word-for-doctor"


@pytest.mark.parametrize("password", [PASSWORD, "wrong-" + PASSWORD])
def test_smtp_logs_in_over_starttls_and_sends_no_mail(tmp_path, monkeypatch, password):
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", password)
    sink = Sink()
    server = dict(
        tls_context=certificates.server_context, require_starttls=True,
        authenticator=password_checker("news", PASSWORD), auth_require_tls=True,
    )  # fmt: skip
    with smtp_server(sink, **server) as (host, port):
        smtp = Smtp(host=host, port=port, username="news", ca_file=str(certificates.ca_file), timeout=10)
        check = credentials_check(Config(smtp=smtp, root=tmp_path), "smtp", 10)
    commands = [chunk.split()[0].upper() for chunk in sink.chunks if chunk.strip()]
    assert sink.received == [] and commands[:3] == [b"EHLO", b"STARTTLS", b"EHLO"] and b"AUTH" in commands
    assert b"MAIL" not in commands and b"RCPT" not in commands
    if password == PASSWORD:
        assert (
            check.status == "ok"
            and check.what == f"smtp: {host}:{port}: EHLO, STARTTLS, AUTH as news accepted (no MAIL sent)"
        )
    else:
        assert check.status == "fail" and "refused the login of 'news'" in check.what
    assert PASSWORD not in check.what + check.fix


def test_smtp_without_starttls_offered_fails_and_a_refused_port_too(tmp_path):
    with smtp_server(Sink()) as (host, port):
        check = credentials_check(Config(smtp=Smtp(host=host, port=port, timeout=10), root=tmp_path), "smtp", 10)
    assert check.status == "fail" and "does not offer STARTTLS" in check.what
    config = Config(smtp=Smtp(host=host, port=port, security="none", timeout=10), root=tmp_path)
    assert "cannot connect" in credentials_check(config, "smtp", 10).what


@pytest.mark.parametrize("provider", sorted(FAKES))
def test_each_api_accepts_the_key_on_its_documented_read_and_refuses_a_bad_one(api, provider, monkeypatch):
    fake, transport = api(provider)
    check = credentials_check(transport.config, provider, 5)
    assert check.status == "ok", check
    assert fake.probes == 1 and fake.calls == 1 and fake.delivered == []
    fake.script = ["401"]
    refused = credentials_check(transport.config, provider, 5)
    assert refused.status == "fail" and "HTTP 40" in refused.what
    assert SECRET not in refused.what + refused.fix


def test_sendgrid_tells_a_key_without_mail_send(api):
    fake, transport = api("sendgrid")
    fake.scopes = ["suppression.read"]
    check = credentials_check(transport.config, "sendgrid", 5)
    assert check.status == "fail" and "lacks the mail.send scope" in check.what


def test_ses_tells_the_sandbox_and_a_paused_account(api):
    fake, transport = api("ses")
    fake.account = {**fake.account, "ProductionAccessEnabled": False}
    check = credentials_check(transport.config, "ses", 5)
    assert check.status == "warn" and "sandbox" in check.what and "50,000 a day" in check.what
    fake.account = {**fake.account, "SendingEnabled": False}
    assert credentials_check(transport.config, "ses", 5).status == "fail"


def test_mailgun_tells_an_unverified_domain(api):
    fake, transport = api("mailgun")
    fake.state = "unverified"
    check = credentials_check(transport.config, "mailgun", 5)
    assert check.status == "warn" and "mg.example.org is unverified" in check.what


def test_resend_takes_a_sending_only_key_and_tells_a_from_domain_it_lacks(api):
    fake, transport = api("resend")
    fake.sending_only = True
    check = credentials_check(transport.config, "resend", 5)
    assert check.status == "ok" and "sending-only key" in check.what
    fake.sending_only = False
    other = dataclasses.replace(transport.config, from_address="news@elsewhere.test")
    assert "not among the account's domains" in credentials_check(other, "resend", 5).what

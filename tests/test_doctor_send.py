"""The DKIM alignment check doctor shares with lint and send: lint warns, send refuses a misaligned d= unless
--force (issue 19: a send signed d=mailer-esp.net with From on bcecc-news.eu went out silently)."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_send_cli import ISSUE, sample, smtp  # noqa: F401 - sample is the fixture

from broadsheet.core.config import load_config
from broadsheet.core.errors import CampaignError
from broadsheet.core.lint import lint_issue
from broadsheet.usecases.send import SendOptions, send_issue


def with_dkim(project, domain: str) -> None:
    """[dkim] signing for ``domain`` (the sample's From is newsletter@example.org)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (project / "dkim.pem").write_bytes(pem)
    path = project / "broadsheet.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f'\n[dkim]\ndomain = "{domain}"\nselector = "news"\nprivate_key_file = "dkim.pem"\n')


def dkim_line(project) -> int:
    lines = (project / "broadsheet.toml").read_text(encoding="utf-8").splitlines()
    return 1 + next(i for i, line in enumerate(lines) if line.startswith("domain = "))


def test_send_refuses_a_dkim_domain_not_aligned_with_from_unless_forced(sample):
    write_subscribers(sample / "list.csv", 3)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 1}, smtp=smtp(host, port))
        with_dkim(sample, "mailer-esp.net")
        config = load_config(sample / "broadsheet.toml")
        with pytest.raises(CampaignError, match="DKIM is not aligned with From") as refused:
            send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder())
        assert refused.value.where == f"{sample / 'broadsheet.toml'}:{dkim_line(sample)}"
        assert "add --force" in str(refused.value)
        assert sink.received == [] and not (sample / ".broadsheet" / "state.db").exists()
        test_copy = Recorder()
        send_issue(SendOptions(issue_dir=sample / ISSUE, test="me@example.com"), config, test_copy)
        assert len(sink.received) == 1  # a test copy to oneself goes, the failure said
        assert any("doctor: fail: [dkim] signs with d=mailer-esp.net" in w for w in test_copy.warnings)
        forced = Recorder()
        result = send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True, force=True), config, forced)
    assert result.counts["sent"] == 3 and "sending although DKIM is not aligned with From (--force)" in forced.warnings
    assert all(re.search(rb"d=mailer-esp\.net;", message.raw) for message in sink.received)


def test_an_aligned_subdomain_sends_without_a_word(sample):
    write_subscribers(sample / "list.csv", 2)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 1}, smtp=smtp(host, port))
        with_dkim(sample, "news.example.org")
        quiet = Recorder()
        result = send_issue(
            SendOptions(issue_dir=sample / ISSUE, yes=True), load_config(sample / "broadsheet.toml"), quiet
        )
    assert result.counts["sent"] == 2 and not [w for w in quiet.warnings if "doctor" in w or "DKIM" in w]


def test_lint_warns_of_a_misaligned_or_missing_dkim_and_names_the_setting(sample):
    configure(sample, send={"transport": "smtp"})
    findings = lint_issue(sample / ISSUE, load_config(sample / "broadsheet.toml"), validate_mjml=False)
    missing = [f for f in findings if f.rule == "dkim-alignment"]
    assert len(missing) == 1 and missing[0].severity == "warning" and "no [dkim]" in missing[0].message
    with_dkim(sample, "mailer-esp.net")
    findings = lint_issue(sample / ISSUE, load_config(sample / "broadsheet.toml"), validate_mjml=False)
    (found,) = [f for f in findings if f.rule == "dkim-alignment"]
    assert (
        found.severity == "warning" and "d=mailer-esp.net, which is not aligned with From example.org" in found.message
    )
    assert found.where.endswith(f"broadsheet.toml:{dkim_line(sample)}")
    configure(sample, send={"transport": "postmark"})  # the provider signs; [dkim] is not what goes out
    findings = lint_issue(sample / ISSUE, load_config(sample / "broadsheet.toml"), validate_mjml=False)
    assert not [f for f in findings if f.rule == "dkim-alignment"]


def test_the_last_campaigns_complaint_and_bounce_rates_against_the_providers_lines(sample):
    from broadsheet.data.store import Store
    from broadsheet.usecases.doctor.history import _rates
    from broadsheet.usecases.doctor.run import DoctorOptions, run_doctor
    from broadsheet.usecases.events.report import AfterSend

    config = load_config(sample / "broadsheet.toml")
    (check,) = run_doctor(DoctorOptions(only=("rates",)), config).checks[1:]
    assert check.status == "ok" and "no campaign" in check.what
    people = [email for email, _ in write_subscribers(sample / "list.csv", 10)]
    with smtp_server(Sink()) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 1}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder())
    (check,) = run_doctor(DoctorOptions(only=("rates",)), config).checks[1:]
    assert check.status == "warn" and "no subscriber store" in check.what
    slug = ISSUE.rsplit("/", 1)[1]
    with Store.for_project(sample) as store:
        for email in people:
            store.add(email)
        store.record_event(people[0], "complained", source="test", campaign=slug)
    (check,) = run_doctor(DoctorOptions(only=("rates",)), config).checks[1:]
    assert check.status == "fail" and check.what.startswith(f"{slug}: 10 sent, hard bounces 0.00%, complaints 10.00%")
    assert _rates(slug, AfterSend(1000, complained=2)).status == "warn"  # over 0.1 %, under Gmail's 0.3 %
    assert _rates(slug, AfterSend(1000, complained=1, hard=19)).status == "ok"
    assert _rates(slug, AfterSend(1000, hard=60)).status == "fail"

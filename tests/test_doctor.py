"""broadsheet doctor against a real DNS server on 127.0.0.1 (dnslib, UDP and TCP) serving a test zone with
good, missing and misaligned records; credentials against aiosmtpd and the API fakes; the one-click check
against serve under waitress. Nothing here is mocked."""

from __future__ import annotations

import dataclasses
import json
import re
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from support.dnsd import Zone, dns_server
from support.ports import free_port
from support.serve import SECRET, serving

from broadsheet.core.compose.alignment import aligned, dkim_alignment, organisational_domain
from broadsheet.core.config import Config, Dkim, Mailgun, Send, Serve, Smtp, load_config
from broadsheet.core.errors import ConfigError
from broadsheet.data.store import Store
from broadsheet.delivery.dns.records import dkim_record_text
from broadsheet.faces.cli import main
from broadsheet.faces.serve.app import make_app
from broadsheet.usecases.doctor.run import DoctorOptions, run_doctor

SELECTOR = "news"


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The key [dkim] signs with, and another (2048 bits: the TXT record is over one 255-byte string)."""
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))  # type: ignore[return-value]


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def zone(keys) -> Zone:
    """good.test has everything; missing.test nothing; bcecc-news.test is signed for mailer-esp.test."""
    ours, other = keys
    zone = Zone()
    zone.add("mail.good.test", "A", "192.0.2.10").add("mail.good.test", "AAAA", "2001:db8::10")
    zone.add("good.test", "TXT", "v=spf1 a:mail.good.test -all").add("good.test", "TXT", "google-site-verification=x")
    zone.add(f"{SELECTOR}._domainkey.good.test", "TXT", dkim_record_text(ours.public_key()))
    zone.add("_dmarc.good.test", "TXT", "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.test")
    zone.add("good.test", "MX", "10 mx.good.test")
    zone.add("wrongkey.test", "TXT", "v=spf1 a:mail.good.test -all")
    zone.add(f"{SELECTOR}._domainkey.wrongkey.test", "TXT", dkim_record_text(other.public_key()))
    zone.add("_dmarc.wrongkey.test", "TXT", "v=DMARC1; p=reject")
    zone.add("wrongkey.test", "MX", "10 mx.good.test")
    return zone


@pytest.fixture
def nameserver(zone) -> str:
    with dns_server(zone) as address:
        yield address


def project(tmp_path: Path, keys, *, domain: str, dkim_domain: str | None = None, **changes) -> Config:
    (tmp_path / "dkim.pem").write_bytes(pem(keys[0]))
    dkim = Dkim(domain=dkim_domain or domain, selector=SELECTOR, private_key_file="dkim.pem")
    config = Config(
        from_address=f"Weekly <newsletter@{domain}>",
        send=Send(transport="smtp"),
        smtp=Smtp(host="mail.good.test"),
        dkim=dkim,
        root=tmp_path,
    )
    return dataclasses.replace(config, **changes)


def dns_only(config: Config, nameserver: str) -> dict[str, tuple[str, str, str, str]]:
    result = run_doctor(DoctorOptions(nameservers=(nameserver,), only=("dns",)), config)
    return {c.name: (c.status, c.what, c.fix, c.record) for c in result.checks}


# -- the alignment rule itself (the Public Suffix List) -------------------------------------------------


def test_relaxed_alignment_is_the_organisational_domain_by_the_public_suffix_list():
    assert organisational_domain("news.bcecc-news.eu") == "bcecc-news.eu"
    assert organisational_domain("mail.example.co.uk") == "example.co.uk"  # co.uk is a public suffix
    assert aligned("mail.example.co.uk", "example.co.uk") and not aligned("other.co.uk", "example.co.uk")
    assert aligned("news.example.org", "example.org") and not aligned("news.example.org", "example.org", strict=True)
    assert not aligned("mailer-esp.net", "bcecc-news.eu")


def test_the_shared_check_fails_a_foreign_dkim_domain_and_a_foreign_mailgun_domain(tmp_path, keys):
    config = project(tmp_path, keys, domain="bcecc-news.eu", dkim_domain="mailer-esp.net")
    found = dkim_alignment(config, "smtp")
    assert found.status == "fail" and "d=mailer-esp.net" in found.message and "bcecc-news.eu" in found.message
    mailgun = dataclasses.replace(config, mailgun=Mailgun(domain="mg.mailer-esp.net"))
    assert dkim_alignment(mailgun, "mailgun").status == "fail"  # [dkim] does not count: Mailgun signs
    ours = dataclasses.replace(config, mailgun=Mailgun(domain="mg.bcecc-news.eu"))
    assert dkim_alignment(ours, "mailgun").status == "ok"
    unsigned = dataclasses.replace(config, dkim=Dkim())
    assert dkim_alignment(unsigned, "smtp").status == "warn"
    assert dkim_alignment(unsigned, "postmark").status == "ok"  # the provider signs for the verified domain
    assert dkim_alignment(unsigned, "outbox").status == "ok"


# -- DNS ------------------------------------------------------------------------------------------


def test_a_domain_with_every_record_passes_every_dns_check(tmp_path, keys, nameserver, zone):
    checks = dns_only(project(tmp_path, keys, domain="good.test"), nameserver)
    assert {name: status for name, (status, *_) in checks.items()} == {
        "dkim-alignment": "ok", "spf": "ok", "dkim": "ok", "dmarc": "ok", "dmarc-alignment": "ok", "mx": "ok",
    }  # fmt: skip
    assert "192.0.2.10" in checks["spf"][1] and "2001:db8::10" in checks["spf"][1]
    assert "p=quarantine" in checks["dmarc"][1] and "mx.good.test" in checks["mx"][1]
    assert ("news._domainkey.good.test", "TXT") in zone.questions  # asked the test server, not the system's


def test_missing_records_fail_and_the_records_doctor_prints_make_them_pass(tmp_path, keys, nameserver, zone):
    config = project(tmp_path, keys, domain="missing.test")
    checks = dns_only(config, nameserver)
    for name in ("spf", "dkim", "dmarc", "mx"):
        assert checks[name][0] == "fail", checks[name]
        assert checks[name][3], f"{name}: no record to publish"
    assert checks["spf"][3] == 'missing.test. TXT "v=spf1 a:mail.good.test ~all"'
    assert checks["dkim"][3].startswith('news._domainkey.missing.test. TXT "v=DKIM1; k=rsa; p=')
    assert checks["dmarc"][3].startswith('_dmarc.missing.test. TXT "v=DMARC1; p=none')
    for name in ("spf", "dkim", "dmarc", "mx"):
        zone.publish(checks[name][3])
    after = dns_only(config, nameserver)
    assert {name: after[name][0] for name in ("spf", "dkim", "dmarc", "mx")} == dict.fromkeys(
        ("spf", "dkim", "dmarc", "mx"), "ok"
    )


def test_a_published_key_that_is_not_the_private_keys_half_fails(tmp_path, keys, nameserver, zone):
    checks = dns_only(project(tmp_path, keys, domain="wrongkey.test"), nameserver)
    assert checks["dkim"][0] == "fail" and "not the public half" in checks["dkim"][1]
    zone.remove(f"{SELECTOR}._domainkey.wrongkey.test", "TXT")
    zone.add(f"{SELECTOR}._domainkey.wrongkey.test", "TXT", "v=DKIM1; k=rsa; p=")
    assert "revoked" in dns_only(project(tmp_path, keys, domain="wrongkey.test"), nameserver)["dkim"][1]


def test_a_dkim_domain_of_another_organisation_fails_alignment_and_dmarc(tmp_path, keys, nameserver, zone):
    zone.add("_dmarc.bcecc-news.test", "TXT", "v=DMARC1; p=reject")
    config = project(tmp_path, keys, domain="bcecc-news.test", dkim_domain="good.test")
    config = dataclasses.replace(config, smtp=Smtp(host="mail.good.test", return_path="bounces+{token}@good.test"))
    checks = dns_only(config, nameserver)
    assert checks["dkim-alignment"][0] == "fail" and "d=good.test" in checks["dkim-alignment"][1]
    assert checks["dkim"][0] == "ok"  # the key itself is right: it is the domain that is wrong
    assert (
        checks["dmarc-alignment"][0] == "fail" and "return path good.test not aligned" in checks["dmarc-alignment"][1]
    )


def test_strict_dkim_alignment_in_the_dmarc_record_refuses_a_subdomain(tmp_path, keys, nameserver, zone):
    zone.add(f"{SELECTOR}._domainkey.news.good.test", "TXT", dkim_record_text(keys[0].public_key()))
    config = project(tmp_path, keys, domain="good.test", dkim_domain="news.good.test")
    config = dataclasses.replace(config, smtp=Smtp(host="mail.good.test", return_path="b+{token}@news.good.test"))
    assert dns_only(config, nameserver)["dmarc-alignment"][0] == "ok"  # relaxed: the same organisation
    zone.remove("_dmarc.good.test", "TXT")
    zone.add("_dmarc.good.test", "TXT", "v=DMARC1; p=reject; adkim=s; aspf=s")
    checks = dns_only(config, nameserver)
    assert checks["dmarc-alignment"][0] == "fail"
    assert "DKIM d=news.good.test not aligned (strict)" in checks["dmarc-alignment"][1]
    assert "return path news.good.test not aligned" in checks["dmarc-alignment"][1]


def test_spf_results_other_than_pass_and_broken_records_fail(tmp_path, keys, nameserver, zone):
    config = project(tmp_path, keys, domain="good.test")
    zone.remove("good.test", "TXT")
    zone.add("good.test", "TXT", "v=spf1 ip4:198.51.100.0/24 ~all")
    spf = dns_only(config, nameserver)["spf"]
    assert spf[0] == "fail" and "softfail" in spf[1]
    assert spf[3] == 'good.test. TXT "v=spf1 ip4:198.51.100.0/24 a:mail.good.test ~all"'
    zone.remove("good.test", "TXT")
    zone.add("good.test", "TXT", "v=spf1 include:loop.test -all")
    zone.add("loop.test", "TXT", "v=spf1 include:good.test -all")
    assert "permerror" in dns_only(config, nameserver)["spf"][1]  # the include loop passes 10 look-ups
    zone.add("good.test", "TXT", "v=spf1 -all")
    assert "2 SPF records" in dns_only(config, nameserver)["spf"][1]


def test_an_include_and_mx_mechanism_and_a_provider_include_are_followed(tmp_path, keys, nameserver, zone):
    config = project(tmp_path, keys, domain="good.test")
    zone.remove("good.test", "TXT")
    zone.add("good.test", "TXT", "v=spf1 include:_spf.good.test -all")
    zone.add("_spf.good.test", "TXT", "v=spf1 mx:relay.good.test/24 -all")
    zone.add("relay.good.test", "MX", "10 out.good.test").add("out.good.test", "A", "192.0.2.99")
    zone.add("out.good.test", "AAAA", "2001:db8::99")
    assert dns_only(config, nameserver)["spf"][0] == "fail"  # 192.0.2.10 is in the /24; 2001:db8::10 is not
    zone.add("_spf.good.test", "TXT", "")  # (ignored: not an SPF record)
    mailgun = dataclasses.replace(config, mailgun=Mailgun(domain="mg.good.test"))
    zone.add("mg.good.test", "TXT", "v=spf1 include:mailgun.org ~all").add("mailgun.org", "TXT", "v=spf1 -all")
    checks = run_doctor(DoctorOptions(transport="mailgun", nameservers=(nameserver,), only=("dns",)), mailgun).checks
    spf = next(c for c in checks if c.name == "spf")
    assert spf.status == "ok" and "includes mailgun.org" in spf.what


def test_a_null_mx_and_an_address_only_domain(tmp_path, keys, nameserver, zone):
    config = project(tmp_path, keys, domain="good.test")
    zone.remove("good.test", "MX")
    zone.add("good.test", "A", "192.0.2.1")
    assert dns_only(config, nameserver)["mx"][0] == "warn"
    zone.add("good.test", "MX", "0 .")
    mx = dns_only(config, nameserver)["mx"]
    assert mx[0] == "fail" and "null MX" in mx[1]


def test_a_server_failure_is_not_taken_for_a_missing_record(tmp_path, keys, nameserver):
    checks = dns_only(project(tmp_path, keys, domain="x.servfail.test"), nameserver)
    assert checks["dmarc"][0] == "fail" and "SERVFAIL" in checks["dmarc"][1] and not checks["dmarc"][3]


# -- the command line -----------------------------------------------------------------------------


def write_config(root: Path, keys, text: str) -> Path:
    (root / "dkim.pem").write_bytes(pem(keys[0]))
    path = root / "broadsheet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_command_prints_one_line_per_check_and_exits_1_on_a_failure(
    tmp_path, keys, nameserver, capsys, monkeypatch
):
    path = write_config(
        tmp_path, keys,
        'from = "newsletter@missing.test"\n[send]\ntransport = "smtp"\n[smtp]\nhost = "mail.good.test"\n'
        f'[dkim]\ndomain = "missing.test"\nselector = "{SELECTOR}"\nprivate_key_file = "dkim.pem"\n'
        f'[doctor]\nnameservers = ["{nameserver}"]\n',
    )  # fmt: skip
    assert main(["--config", str(path), "doctor", "--only", "dns"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 7 and out[-1] == "doctor (smtp): 2 ok, 0 warn, 4 fail"
    assert out[3].startswith("fail  dmarc ") and '— publish: _dmarc.missing.test. TXT "v=DMARC1; p=none' in out[3]
    monkeypatch.setenv("BROADSHEET_NAMESERVERS", nameserver)
    good = path.read_text().replace("missing.test", "good.test")
    path.write_text(good.replace(f'nameservers = ["{nameserver}"]', 'nameservers = ["192.0.2.53:1"]'))
    assert main(["--config", str(path), "doctor", "--only", "dns", "--json"]) == 0  # the variable wins
    document = json.loads(capsys.readouterr().out)
    assert document["fail"] == 0 and document["transport"] == "smtp"
    assert [c["name"] for c in document["checks"]] == [
        "dkim-alignment",
        "spf",
        "dkim",
        "dmarc",
        "dmarc-alignment",
        "mx",
    ]


def test_bad_input_is_one_line_and_exit_2(tmp_path, keys, capsys, monkeypatch):
    path = write_config(tmp_path, keys, '[doctor]\nnameservers = ["not-an-address"]\n')
    assert main(["--config", str(path), "doctor"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2" in err and "doctor.nameservers" in err and len(err.splitlines()) == 1
    path.write_text("")
    monkeypatch.setenv("BROADSHEET_NAMESERVERS", "nonsense")
    assert main(["--config", str(path), "doctor", "--only", "dns"]) == 2
    assert main(["--config", str(path), "doctor", "--transport", "pigeon"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 2


def test_config_refuses_a_malformed_nameserver(tmp_path):
    path = tmp_path / "broadsheet.toml"
    path.write_text('[doctor]\nnameservers = ["127.0.0.1:99999"]\n')
    with pytest.raises(ConfigError, match=r"doctor\.nameservers"):
        load_config(path)


# -- secret and one-click -------------------------------------------------------------------------


def test_the_secret_check_reuses_the_weak_secret_rule(tmp_path, keys, monkeypatch):
    config = dataclasses.replace(
        project(tmp_path, keys, domain="good.test"), serve=Serve(public_url="https://n.good.test")
    )
    config = dataclasses.replace(config, unsubscribe_url="")  # __post_init__ fills it from public_url again
    config = Config(**{f.name: getattr(config, f.name) for f in dataclasses.fields(Config)})

    def secret() -> tuple[str, str]:
        found = run_doctor(DoctorOptions(only=("secret",)), config).checks[-1]
        return found.status, found.what

    monkeypatch.delenv("BROADSHEET_SECRET", raising=False)
    assert secret()[0] == "fail"
    monkeypatch.setenv("BROADSHEET_SECRET", "ab" * 20)
    assert secret() == (
        "fail",
        "BROADSHEET_SECRET is too weak to sign links: it repeats too few different characters to hold 128 random bits",
    )
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    assert secret()[0] == "ok"


def test_serve_answers_the_one_click_probe_with_200_and_records_nothing(tmp_path, keys, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    port = free_port()
    config = project(tmp_path, keys, domain="good.test", serve=Serve(public_url=f"http://127.0.0.1:{port}"))
    config = Config(**{f.name: getattr(config, f.name) for f in dataclasses.fields(Config)})  # unsubscribe_url
    with serving(make_app(config), config, port):
        check = run_doctor(DoctorOptions(only=("public-url",)), config).checks[-1]
    assert check.status == "warn" and "answers the one-click POST with 200" in check.what and "http://" in check.what
    with Store.for_project(tmp_path) as store:
        assert store.get("one-click-check@broadsheet.invalid") is None
    check = run_doctor(DoctorOptions(only=("public-url",)), config).checks[-1]  # nothing listens now
    assert check.status == "fail" and "does not answer" in check.what


def test_a_redirect_or_an_http_address_elsewhere_fails_the_one_click_check(tmp_path, keys, httpserver, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    httpserver.expect_request("/u/", method="POST").respond_with_data("", status=301, headers={"Location": "/x"})
    base = httpserver.url_for("/").rstrip("/")
    config = project(tmp_path, keys, domain="good.test", unsubscribe_url=base + "/u/?t={token}")
    check = run_doctor(DoctorOptions(only=("public-url",)), config).checks[-1]
    assert check.status == "fail" and "redirect (301)" in check.what
    elsewhere = project(tmp_path, keys, domain="good.test", unsubscribe_url="http://news.good.test/u/{token}")
    assert run_doctor(DoctorOptions(only=("public-url",)), elsewhere).checks[-1].status == "fail"


@pytest.mark.parametrize("trusted", [True, False])
def test_an_https_address_answering_200_is_ok_and_an_untrusted_certificate_fails(tmp_path, keys, monkeypatch, trusted):
    """https on 127.0.0.1 with a trustme certificate: requests verifies it against REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    if trusted:
        authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        server.expect_request(re.compile("/u/.+"), method="POST", data="List-Unsubscribe=One-Click").respond_with_data(
            "unsubscribed\n"
        )
        config = project(tmp_path, keys, domain="good.test", unsubscribe_url=server.url_for("/u/{token}"))
        check = run_doctor(DoctorOptions(only=("public-url",)), config).checks[-1]
    finally:
        server.clear()
        server.stop()
    if trusted:
        assert (check.status, check.what) == (
            "ok", f"https://127.0.0.1:{server.port} answers the one-click POST with 200, no redirect",
        )  # fmt: skip
    else:
        assert check.status == "fail" and "certificate is not trusted" in check.what


@pytest.mark.slow  # waits out one question's lifetime (8 s)
def test_a_server_that_never_answers_is_waited_for_once(tmp_path, keys, monkeypatch):
    """A UDP socket that reads nothing: the first question times out, the others fail at once with its reason."""
    import socket

    from broadsheet.delivery.dns import resolver

    monkeypatch.setattr(resolver, "TIMEOUT", 0.3)  # the waits are shortened, not the logic: 8 s each otherwise
    monkeypatch.setattr(resolver, "LIFETIME", 0.8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        checks = dns_only(project(tmp_path, keys, domain="good.test"), f"127.0.0.1:{silent.getsockname()[1]}")
    reasons = {checks[name][1] for name in ("spf", "dkim", "dmarc", "mx")}
    assert [checks[name][0] for name in ("spf", "dkim", "dmarc", "mx")] == ["fail"] * 4
    assert reasons == {"no answer from the DNS servers (the TXT question for good.test waited 0.8 s)"}

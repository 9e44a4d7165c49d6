"""broadsheet.tokens: opaque, bound to purpose and list, tamper-evident, rotation-friendly."""

from __future__ import annotations

import base64

import pytest

from broadsheet.errors import ConfigError
from broadsheet.tokens import make_token, read_token, token_secrets

LIST = "weekly.news.example.org"


def test_a_token_round_trips_without_showing_the_address():
    token = make_token("confirm", "Jane.Doe+news@example.com", LIST, "s1", extra="nonce123.1700000000")
    data = read_token("confirm", token, LIST, ["s1"])
    assert (data.email, data.extra) == ("Jane.Doe+news@example.com", "nonce123.1700000000")
    assert "jane" not in token.lower() and "example" not in token.lower() and "nonce" not in token
    assert token.replace("-", "").replace("_", "").isalnum()


def test_unicode_and_long_addresses_round_trip():
    email = "josé." + "x" * 60 + "@exämple.org"
    assert read_token("unsubscribe", make_token("unsubscribe", email, LIST, "s"), LIST, ["s"]).email == email


@pytest.mark.parametrize("purpose, list_id, secrets", [
    ("confirm", LIST, ["s1"]),                  # an unsubscribe token is no confirmation token
    ("unsubscribe", "other.example.org", ["s1"]),  # nor valid for another list
    ("unsubscribe", LIST, ["s2"]),              # nor under another secret
    ("unsubscribe", LIST, []),
])
def test_a_token_is_bound_to_purpose_list_and_secret(purpose, list_id, secrets):
    token = make_token("unsubscribe", "ann@example.org", LIST, "s1")
    assert read_token(purpose, token, list_id, secrets) is None


def test_every_flipped_bit_is_refused():
    token = make_token("unsubscribe", "ann@example.org", LIST, "s1")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[index] ^= bit
            forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
            assert read_token("unsubscribe", forged, LIST, ["s1"]) is None, (index, bit)


@pytest.mark.parametrize("junk", ["", "x", "!!!!", "AAAA", "é" * 10, "A" * 5000, "AQ"])
def test_junk_is_refused(junk):
    assert read_token("unsubscribe", junk, LIST, ["s1"]) is None


def test_the_previous_secret_still_verifies_during_rotation(monkeypatch):
    old = make_token("unsubscribe", "ann@example.org", LIST, "old-secret")
    monkeypatch.setenv("BROADSHEET_SECRET", "new-secret")
    monkeypatch.setenv("BROADSHEET_SECRET_PREVIOUS", "old-secret")
    secrets = token_secrets()
    assert secrets == ("new-secret", "old-secret")
    assert read_token("unsubscribe", old, LIST, secrets).email == "ann@example.org"
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS")
    assert read_token("unsubscribe", old, LIST, token_secrets()) is None


def test_no_secret_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="BROADSHEET_SECRET"):
        token_secrets()


def test_the_same_input_gives_the_same_token_and_different_inputs_differ():
    one = make_token("unsubscribe", "ann@example.org", LIST, "s1")
    assert one == make_token("unsubscribe", "ann@example.org", LIST, "s1")
    assert one != make_token("unsubscribe", "bob@example.org", LIST, "s1")
    assert make_token("confirm", "a@example.org", LIST, "s1", extra="n1.1") != make_token(
        "confirm", "a@example.org", LIST, "s1", extra="n2.1")

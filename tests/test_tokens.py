"""broadsheet.core.tokens: opaque, bound to purpose and list, tamper-evident, rotation-friendly."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from broadsheet.core.config import weak_secret
from broadsheet.core.errors import ConfigError
from broadsheet.core.tokens import (
    make_reference_token,
    make_token,
    read_reference_token,
    read_token,
    reference_of,
    token_secrets,
)

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


@pytest.mark.parametrize(
    "purpose, list_id, secrets",
    [
        ("confirm", LIST, ["s1"]),  # an unsubscribe token is no confirmation token
        ("unsubscribe", "other.example.org", ["s1"]),  # nor valid for another list
        ("unsubscribe", LIST, ["s2"]),  # nor under another secret
        ("unsubscribe", LIST, []),
    ],
)
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
    old = make_token("unsubscribe", "ann@example.org", LIST, "old-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.setenv("BROADSHEET_SECRET", "new-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.setenv("BROADSHEET_SECRET_PREVIOUS", "old-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    secrets = token_secrets()
    assert secrets == ("new-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0", "old-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    assert read_token("unsubscribe", old, LIST, secrets).email == "ann@example.org"
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS")
    assert read_token("unsubscribe", old, LIST, token_secrets()) is None


# Tokens minted by the first format (version 1, AES-CTR with an HMAC synthetic IV) under SECRET: links
# already sent must keep working for as long as BROADSHEET_SECRET (or _PREVIOUS) holds that secret.
SECRET = "serve-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
SERVE_LIST = "newsletter.bcecc.example.org"
VERSION_1 = [
    ("unsubscribe", "kept-link@example.org", "", "AW8tKJJfmOjJ702f-A-KWyIDrvX3s4jfWeFmZNetimGOGfMEsyFi"),
    ("unsubscribe", "josé.kept@exämple.org", "", "AdrY1Cm34xGwVgtdewswUI7gD7ql9mAi6LFfNBNWW2svQd2mfxjfDuY"),
    (
        "confirm",
        "kept-confirm@example.org",
        "n0nce_AbC123.1700000000",
        "ARxCnidKKFrNIsFkFsw6lX70PjS8RLbio_ss0DB5sddwdJD4L1ajl5i7c_YJy9l4j5rgtfCmML7ARjVYAlPftvc",
    ),
    (
        "form",
        "/signup",
        "1700000000.cookieNonce_123",
        "AYEAkmBEvZFx5HUbIJ82CYgQIml9C4ma43pL1lk6EMnuxNcW_qjZEqHDMw9UxPPGu4my",
    ),
    ("form", "/u/x", "", "AX4Sr3T8qoXRHo_wyZHpwPwhpBMsdw"),
    ("bounce", "kept-bounce@example.org", "", "AY7j_lMWrhblE1QTM5rZq3oNv7hCO5BYli7kJb0XMl-PQPLvyfsj8nQ"),
]


@pytest.mark.parametrize("purpose, email, extra, token", VERSION_1)
def test_tokens_of_the_first_format_are_still_read_under_either_secret(purpose, email, extra, token):
    other = "other-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
    for given in ([SECRET], [other, SECRET]):  # BROADSHEET_SECRET, or _PREVIOUS while rotating
        data = read_token(purpose, token, SERVE_LIST, given)
        assert data is not None and (data.email, data.extra) == (email, extra)
    assert read_token(purpose, token, SERVE_LIST, [other]) is None
    assert read_token(purpose, token, "other.example.org", [SECRET]) is None
    wrong = "confirm" if purpose != "confirm" else "unsubscribe"
    assert read_token(wrong, token, SERVE_LIST, [SECRET]) is None


def test_new_tokens_are_rfc_5297_aes_siv_with_purpose_and_list_as_associated_data():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    token = make_token("confirm", "kept-confirm@example.org", SERVE_LIST, SECRET, extra="n0nce_AbC123.1700000000")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    key = HKDF(hashes.SHA256(), 64, salt=b"broadsheet tokens", info=b"aes-siv").derive(SECRET.encode())
    sealed = AESSIV(key).encrypt(
        b"kept-confirm@example.org\x00n0nce_AbC123.1700000000", [b"confirm", SERVE_LIST.encode()]
    )
    assert raw == b"\x02" + sealed
    assert len(token) == len(VERSION_1[2][3])  # as long as before: the same limits hold
    downgraded = base64.urlsafe_b64encode(b"\x01" + raw[1:]).rstrip(b"=").decode()
    assert read_token("confirm", downgraded, SERVE_LIST, [SECRET]) is None


WEAK = ["x", "demo-only-not-a-real-secret", " " * 40, "a" * 64, "ab" * 64, "abcd" * 8, "abcdefg" * 6]


@pytest.mark.parametrize("weak", WEAK)
@pytest.mark.parametrize("variable", ["BROADSHEET_SECRET", "BROADSHEET_SECRET_PREVIOUS"])
def test_a_weak_secret_is_refused_naming_its_variable_never_its_value(monkeypatch, variable, weak):
    monkeypatch.setenv("BROADSHEET_SECRET", secrets.token_urlsafe(32))
    monkeypatch.setenv("BROADSHEET_SECRET_PREVIOUS", secrets.token_hex(32))
    monkeypatch.setenv(variable, weak)
    with pytest.raises(ConfigError) as caught:
        token_secrets()
    assert str(caught.value).startswith(f"environment variable {variable}: too weak to sign links: it ")
    assert "secrets.token_urlsafe(32)" in str(caught.value)
    assert len(weak.strip()) < 8 or weak not in str(caught.value)


def test_every_secret_made_as_the_readme_says_is_strong_enough():
    made = [secrets.token_urlsafe(32) for _ in range(2000)] + [secrets.token_hex(32) for _ in range(2000)]
    assert [weak_secret(secret) for secret in made] == [None] * len(made)
    assert [weak_secret(secret) for secret in WEAK if weak_secret(secret) is None] == []


def test_no_secret_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="BROADSHEET_SECRET"):
        token_secrets()


def test_the_same_input_gives_the_same_token_and_different_inputs_differ():
    one = make_token("unsubscribe", "ann@example.org", LIST, "s1")
    assert one == make_token("unsubscribe", "ann@example.org", LIST, "s1")
    assert one != make_token("unsubscribe", "bob@example.org", LIST, "s1")
    assert make_token("confirm", "a@example.org", LIST, "s1", extra="n1.1") != make_token(
        "confirm", "a@example.org", LIST, "s1", extra="n2.1"
    )


@pytest.mark.parametrize("size", [0, 1, 16, 17, 33, 200])
@pytest.mark.parametrize("tag", [bytes(range(16)), b"\xff" * 16])
def test_the_keystream_is_standard_aes_ctr_including_counter_wraparound(size, tag):
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    from broadsheet.core.tokens import _ctr, _keys

    keys, data = _keys("s1"), bytes(range(size)) if size <= 256 else b""
    reference = Cipher(keys.aes, modes.CTR(tag)).encryptor()
    assert _ctr(keys, tag, data) == reference.update(data) + reference.finalize()


def test_reference_tokens_round_trip_in_any_case_and_refuse_every_change():
    rows = {0: "a@example.com", 300: "Jane.Doe@Example.com", 2**35 - 1: "z@example.com"}
    for row, email in rows.items():
        token = make_reference_token("bounce", row, email, "list", "secret")
        assert re.fullmatch(r"[a-z2-7]{17,24}", token) and reference_of(token) == row
        for spelling in (token, token.upper()):
            assert read_reference_token("bounce", spelling, "list", ["secret"], rows.get) == email
        assert read_reference_token("unsubscribe", token, "list", ["secret"], rows.get) is None
        assert read_reference_token("bounce", token, "other-list", ["secret"], rows.get) is None
        for index in range(len(token)):
            changed = token[:index] + ("b" if token[index] == "a" else "a") + token[index + 1 :]
            assert read_reference_token("bounce", changed, "list", ["secret"], rows.get) is None, index
    for junk in ("", "a" * 25, "0000000000000000", "abc-def", "é" * 18):
        assert reference_of(junk) is None
        assert read_reference_token("bounce", junk, "list", ["secret"], rows.get) is None

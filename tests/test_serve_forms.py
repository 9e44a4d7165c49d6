"""serve reads form bodies through werkzeug, with caps: what browsers and mail providers send, and nothing
costly."""

from __future__ import annotations

import io
import logging
import re
import shutil

import pytest
from conftest import ROOT
from werkzeug.exceptions import RequestEntityTooLarge

from broadsheet.core.audience.addresses import mailbox_of
from broadsheet.core.config import load_config
from broadsheet.data.store import GroupWriter, Store, store_path
from broadsheet.delivery.transports.outbox import OutboxTransport
from broadsheet.faces.serve.http import MAX_PARTS, Request
from broadsheet.faces.serve.pages import Pages
from broadsheet.faces.serve.signup import ConfirmationMail


def form(body: bytes, content_type: str) -> dict[str, str]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/u/x",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    return Request(environ, 1 << 20).form.to_dict()


def multipart(*parts: tuple[str, str], boundary: str = "----formdata-x7") -> bytes:
    lines = []
    for disposition, value in parts:
        lines += [f"--{boundary}", f"Content-Disposition: {disposition}", "", value]
    return ("\r\n".join([*lines, f"--{boundary}--", ""])).encode()


def test_a_one_click_post_as_gmail_sends_it_multipart_and_urlencoded():
    body = multipart(('form-data; name="List-Unsubscribe"', "One-Click"))
    assert form(body, "multipart/form-data; boundary=----formdata-x7") == {"List-Unsubscribe": "One-Click"}
    assert form(b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded") == {"List-Unsubscribe": "One-Click"}


def test_fields_files_quoted_boundaries_and_utf8():
    body = multipart(
        ('form-data; name="email"', "ann@example.org"),
        ('form-data; name="upload"; filename="x.txt"', "not a field"),
        ("form-data; name=name", "Zoë"),
        ('form-data; name="email"', "second@example.org"),  # the first value of a field is kept
        boundary="a b'c",
    )
    assert form(body, 'multipart/form-data; boundary="a b\'c"') == {"email": "ann@example.org", "name": "Zoë"}


def test_what_hand_written_clients_send_reads_too_and_lookalikes_do_not_cut_values():
    lf_only = multipart(('form-data; name="a"', "1"), boundary="B").replace(b"\r\n", b"\n")
    assert form(lf_only, "multipart/form-data; boundary=B") == {"a": "1"}
    assert form(
        multipart(('form-data; name="a"', "1"), boundary="B"), "multipart/form-data; xboundary=zzz; boundary=B"
    ) == {"a": "1"}
    inside = multipart(('form-data; name="a"', "x\r\n--Bnot-a-delimiter"), boundary="B")
    assert form(inside, "multipart/form-data; boundary=B") == {"a": "x\r\n--Bnot-a-delimiter"}
    latin = multipart(('form-data; name="a"', "caf\xe9"), boundary="B").replace("caf\xe9".encode(), b"caf\xe9")
    latin = latin.replace(b'name="a"', b'name="a"\r\nContent-Type: text/plain; charset=ISO-8859-1')
    assert form(latin, "multipart/form-data; boundary=B") == {"a": "caf\xe9"}
    encoded = multipart(('form-data; name="a"', "MQ=="), boundary="B").replace(
        b'name="a"', b'name="a"\r\nContent-Transfer-Encoding: base64'
    )
    assert form(encoded, "multipart/form-data; boundary=B") == {}  # never taken as the text it hides


def test_hostile_forms_are_read_as_nothing_or_capped_never_costly():
    many_params = "multipart/form-data; " + "a=b; " * 6000 + "boundary=x"
    assert form(multipart(('form-data; name="a"', "1"), boundary="x"), many_params) == {}
    nested = "form-data; name" + "(" * 15_000
    assert form(multipart((nested, "1"), boundary="x"), "multipart/form-data; boundary=x") == {}
    crowd = multipart(*((f'form-data; name="f{i}"', str(i)) for i in range(MAX_PARTS + 1)), boundary="x")
    with pytest.raises(RequestEntityTooLarge):  # answered 413
        form(crowd, "multipart/form-data; boundary=x")
    fat_head = multipart(("form-data; " + "a=b; " * 250 + 'name="a"', "1"), boundary="x")
    assert form(fat_head, "multipart/form-data; boundary=x") == {}  # werkzeug would spend ms on each
    assert form(multipart(('form-data; name="a"', "1"), boundary="x"), "multipart/form-data") == {}  # no boundary
    bad_bytes = multipart(('form-data; name="a"', "1"), boundary="x").replace(b"1", b"\xff")
    assert form(bad_bytes, "multipart/form-data; boundary=x") == {"a": "\ufffd"}  # never the raw bytes
    unknown = multipart(('form-data; name="a"', "1"), boundary="x").replace(
        b'name="a"', b'name="a"\r\nContent-Type: text/plain; charset=no-such-charset'
    )
    assert form(unknown, "multipart/form-data; boundary=x") == {}


def test_long_boundaries_as_browsers_and_gmail_send_them_read_the_same_fields():
    for boundary in ("000000000000c0ffee0123456789", "----WebKitFormBoundary7MA4YWxkTrZu0gW"):
        kind = f"multipart/form-data; boundary={boundary}"
        one_click = multipart(('form-data; name="List-Unsubscribe"', "One-Click"), boundary=boundary)
        assert form(one_click, kind) == {"List-Unsubscribe": "One-Click"}
        assert form(one_click.replace(b"\r\n", b"\n"), kind) == {"List-Unsubscribe": "One-Click"}
        for value in (
            f"x\r\n--{boundary}not-a-delimiter",  # at a line start, but no delimiter
            f"see --{boundary}-- mid-line",  # inside a line: the form is read as sent
            "x\r\n--BroadsheetForm\r\ny",  # the boundary serve reads forms with, in a value
        ):
            assert form(
                multipart(('form-data; name="a"', value), ('form-data; name="b"', "2"), boundary=boundary), kind
            ) == {
                "a": value,
                "b": "2",
            }
        crowd = multipart(*((f'form-data; name="f{i}"', str(i)) for i in range(MAX_PARTS + 1)), boundary=boundary)
        with pytest.raises(RequestEntityTooLarge):
            form(crowd, kind)
        fat_head = multipart(("form-data; " + "a=b; " * 250 + 'name="a"', "1"), boundary=boundary)
        assert form(fat_head, kind) == {}


def test_a_new_boundary_on_every_form_compiles_no_new_pattern(monkeypatch):
    """Every client sends a boundary of its own (Gmail one per one-click): reading its form compiles no
    regular expression for it (werkzeug would compile two per boundary, most of a one-click's cost)."""
    patterns = set()
    compile_pattern = re.compile

    def noting(pattern, flags=0):
        patterns.add(pattern)
        return compile_pattern(pattern, flags)

    monkeypatch.setattr(re, "compile", noting)
    for n in range(20):
        boundary = f"{n + 1:028x}"
        body = multipart(('form-data; name="List-Unsubscribe"', "One-Click"), boundary=boundary)
        assert form(body, f"multipart/form-data; boundary={boundary}") == {"List-Unsubscribe": "One-Click"}
    assert len(patterns) <= 3


def test_the_mailbox_an_address_reaches():
    assert mailbox_of("Ann+news@Example.org") == "ann@example.org"
    assert mailbox_of("a.n.n+x@googlemail.com") == mailbox_of("ann@gmail.com") == "ann@gmail.com"
    assert mailbox_of("a.n.n@example.org") == "a.n.n@example.org"  # dots matter elsewhere
    assert mailbox_of("+only@example.org") == "+only@example.org"


def _confirmations(tmp_path, monkeypatch, fail_first: bool):
    """ConfirmationMail over a real store and the real outbox, whose first message fails with a surprise
    when asked."""
    monkeypatch.setenv("BROADSHEET_SECRET", "confirmations-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    shutil.copy(ROOT / "broadsheet.toml", tmp_path / "broadsheet.toml")
    shutil.copytree(ROOT / "assets", tmp_path / "assets")
    config = load_config(tmp_path / "broadsheet.toml")
    calls: list[str] = []

    class Outbox(OutboxTransport):
        def send_batch(self, messages):
            calls.append(messages[0].recipient)
            if fail_first and len(calls) == 1:
                raise RuntimeError("a surprise")  # not a transport error: the kind nothing expects
            return super().send_batch(messages)

    store = Store.for_project(tmp_path)
    writer = GroupWriter(store_path(tmp_path))
    mail = ConfirmationMail(config, Pages(config), lambda: Outbox(config), "secret", store=lambda: store, writer=writer)
    return mail, tmp_path / "outbox"


def test_one_surprising_failure_does_not_silence_the_confirmations_after_it(tmp_path, monkeypatch, caplog):
    mail, outbox = _confirmations(tmp_path, monkeypatch, fail_first=True)
    mail.post("first@example.org", "First", source="form")
    mail.post("second@example.org", "Second", source="form")
    mail.close()
    assert [path.name.split("-", 1)[1] for path in outbox.rglob("*.eml")] == ["second@example.org.eml"]
    assert "RuntimeError: a surprise" in caplog.text


def test_sign_ups_taken_after_serve_began_to_stop_wait_in_the_store_for_its_next_start(tmp_path, monkeypatch):
    mail, outbox = _confirmations(tmp_path, monkeypatch, fail_first=False)
    assert mail.post("early@example.org", "Early", source="form")
    mail.close()  # sends what waits
    assert mail.post("late@example.org", "Late", source="form")  # kept, not sent
    assert [path.name.split("-", 1)[1] for path in outbox.rglob("*.eml")] == ["early@example.org.eml"]
    again = ConfirmationMail(
        mail.config, Pages(mail.config), mail.transport, "secret", store=mail.store, writer=mail.writer
    )
    again.start()
    again.close()
    assert sorted(path.name.split("-", 1)[1] for path in outbox.rglob("*.eml")) == [
        "early@example.org.eml",
        "late@example.org.eml",
    ]


def test_a_confirmation_its_serve_stopped_while_sending_is_never_sent_again(tmp_path, monkeypatch, caplog):
    """Whether it left is unknown: the sign-up is recorded, the reader may sign up again."""
    mail, outbox = _confirmations(tmp_path, monkeypatch, fail_first=False)
    store = mail.store()
    assert store.take_sign_up("cut-off@example.org", name="", source="form", limit=10)
    assert store.sign_up_waiting(store.waiting_sign_ups(1)[0])  # marked as being mailed; then serve stopped
    store.db.execute("UPDATE intake SET mailing = '2026-01-01T00:00:00Z'")  # long ago
    mail.start()
    mail.close()
    assert list(outbox.rglob("*.eml")) == [] and store.db.execute("SELECT count(*) FROM intake").fetchone() == (0,)
    assert store.get("cut-off@example.org").status == "unconfirmed"
    assert ("broadsheet.faces.serve", logging.ERROR) in {(r.name, r.levelno) for r in caplog.records}
    assert "1 confirmation message(s) not sent: serve stopped while sending them" in caplog.text

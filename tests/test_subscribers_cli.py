"""`broadsheet subscribers import/export/add/remove/forget/list/show` and `send` through the store, by the real CLI."""

from __future__ import annotations

import base64
import csv
import io
import os
import random as random_module
import sqlite3
import subprocess
import sys
import time

import pytest
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_cli_build import assert_one_line_error, run_cli

from broadsheet.data.store import Store
from broadsheet.faces.cli import main
from broadsheet.faces.commands.subscribers import STATUS_CHOICES

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"

LIST = """email,name,status,tags,city
ann@example.org,Ann Lee,,news;art,Gent
bob@example.org,Bob,unsubscribed,news,
not-an-address,Nobody,,,
cy@EXAMPLE.org,Cy,,art,Leuven
ANN@example.org,Ann Again,,,Brugge
"""


@pytest.fixture
def sample(project, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    configure(project, send={"transport": "outbox", "list": "list.csv", "connections": 1})
    return project


def stored(project, email):
    with Store.for_project(project) as store:
        return store.get(email)


def outbox_recipients(project) -> list[str]:
    return sorted(path.name.split("-", 1)[1][: -len(".eml")] for path in (project / "outbox").rglob("*.eml"))


def test_import_streams_the_csv_reports_bad_rows_and_keeps_the_first_row_of_each_address(sample):
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    result = run_cli(sample, "subscribers", "import", "list.csv")
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr.strip()
        == "list.csv:4: invalid address: An email address must have an @-sign. (not-an-address); skipped"
    )
    assert "5 row(s) read; added 3 (subscribed 2, unsubscribed 1)" in result.stdout  # the bad one too
    assert "1 bad row(s) skipped" in result.stdout
    assert "1 row(s) for addresses already in the store (or repeated in the file) left as they were" in result.stdout
    ann = stored(sample, "ann@example.org")
    assert (ann.name, ann.tags, ann.fields, ann.status) == ("Ann Lee", ("art", "news"), {"city": "Gent"}, "subscribed")
    assert stored(sample, "bob@example.org").status == "unsubscribed"
    assert stored(sample, "cy@example.org").email == "cy@example.org"
    show = run_cli(sample, "subscribers", "show", "ANN@example.org")
    assert show.returncode == 0 and "imported      import  (list.csv)" in show.stdout and "city     Gent" in show.stdout


def test_import_update_merges_but_never_resubscribes_without_being_asked(sample):
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    run_cli(sample, "subscribers", "import", "list.csv")
    (sample / "more.csv").write_text(
        "email,name,status,tags,city,company\n"
        "ann@example.org,,,events,,ACME\n"
        "bob@example.org,Robert,subscribed,,,\n"
        "cy@example.org,Cy,complained,,,\n"
        "new@example.org,New,,,,\n",
        encoding="utf-8",
    )
    plain = run_cli(sample, "subscribers", "import", "more.csv")
    assert plain.returncode == 0, plain.stderr
    assert "added 1" in plain.stdout and "1 unsubscribed, bounced or complained now" in plain.stdout
    assert stored(sample, "ann@example.org").fields == {"city": "Gent"}  # no merge without --update
    assert stored(sample, "cy@example.org").status == "complained"  # an opt-out always applies
    update = run_cli(sample, "subscribers", "import", "more.csv", "--update")
    assert update.returncode == 0, update.stderr
    assert "1 say subscribed for someone who unsubscribed" in update.stdout
    ann, bob = stored(sample, "ann@example.org"), stored(sample, "bob@example.org")
    assert ann.fields == {"city": "Gent", "company": "ACME"} and ann.tags == ("art", "events", "news")
    assert ann.name == "Ann Lee"  # an empty cell never erases
    assert (bob.name, bob.status) == ("Robert", "unsubscribed")
    again = run_cli(sample, "subscribers", "import", "more.csv", "--update", "--resubscribe")
    assert again.returncode == 0 and stored(sample, "bob@example.org").status == "subscribed"
    assert stored(sample, "cy@example.org").status == "complained"  # its row still says complained
    events = [(e.kind, e.source, e.detail) for e in Store.for_project(sample).events("bob@example.org")]
    assert events[-1] == ("subscribed", "import", "more.csv:3")


@pytest.mark.parametrize("args, fragments", [
    (("import", "missing.csv"), ("missing.csv", "the list does not exist")),
    (("import", "list.csv", "--resubscribe"), ("--resubscribe only goes with --update",)),
    (("add", "not-an-address"), ("invalid address",)),
    (("add", "ann@example.org"), ("ann@example.org is already in the store", "audience.db")),
    (("show", "zed@example.org"), ("zed@example.org is not in the subscriber store",)),
])  # fmt: skip
def test_bad_input_is_one_line(sample, args, fragments):
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    run_cli(sample, "subscribers", "add", "ann@example.org")
    assert_one_line_error(run_cli(sample, "subscribers", *args), *fragments)


def test_a_list_without_an_email_column_is_one_line_and_imports_nothing(sample):
    (sample / "list.csv").write_text("mail,name\nann@example.org,Ann\n", encoding="utf-8")
    assert_one_line_error(run_cli(sample, "subscribers", "import", "list.csv"), "list.csv:1", "no 'email' column")
    assert Store.for_project(sample).count() == 0


def test_export_writes_what_import_reads(sample, tmp_path):
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    run_cli(sample, "subscribers", "import", "list.csv")
    run_cli(sample, "subscribers", "add", "dee@example.org", "--name", "Dee, the Second", "--tag", "vip")
    exported = run_cli(sample, "subscribers", "export")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["status"], r["tags"], r["city"]) for r in rows] == [
        ("ann@example.org", "subscribed", "art;news", "Gent"), ("bob@example.org", "unsubscribed", "news", ""),
        ("cy@example.org", "subscribed", "art", "Leuven"), ("dee@example.org", "subscribed", "vip", ""),
    ]  # fmt: skip
    assert rows[3]["name"] == "Dee, the Second"
    only = run_cli(sample, "subscribers", "export", "--status", "unsubscribed", "out.csv")
    assert only.returncode == 0 and "wrote 1 subscriber(s)" in only.stdout
    other = tmp_path / "other"
    other.mkdir()
    (other / "broadsheet.toml").write_text('name = "Other"\nfrom = "x@example.org"\n', encoding="utf-8")
    (other / "all.csv").write_text(exported.stdout, encoding="utf-8")
    assert run_cli(other, "subscribers", "import", "all.csv").returncode == 0
    assert run_cli(other, "subscribers", "export").stdout == exported.stdout


def test_an_export_opens_in_a_spreadsheet_as_text_and_imports_as_it_was(sample, tmp_path):
    """A name from a public sign-up form is hostile: no exported cell starts a formula (=, +, -, @), and
    the apostrophe that stops it comes off again when the file is imported."""
    (sample / "list.csv").write_text(
        "email,name,tags,note,score,@handle\n"
        '-dash@example.org,"=HYPERLINK(""http://evil.example"",""click"")",@team;-vip,+32 2 555 0101,-30,@dash\n'
        "plain@example.org,O'Brien,news,'=already quoted,12,\n",
        encoding="utf-8",
    )
    imported = run_cli(sample, "subscribers", "import", "list.csv")
    assert imported.returncode == 0 and "left as they were" not in imported.stdout  # every address was new
    exported = run_cli(sample, "subscribers", "export")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell[:1] and cell[0] in "=+-@" and cell != "-30"]  # a signed number stays one
    dash = next(row for row in rows if "dash@example.org" in row[0])
    assert dash[:2] == ["'-dash@example.org", '\'=HYPERLINK("http://evil.example","click")']
    other = tmp_path / "other"
    other.mkdir()
    (other / "broadsheet.toml").write_text('name = "Other"\nfrom = "x@example.org"\n', encoding="utf-8")
    (other / "all.csv").write_text(exported.stdout, encoding="utf-8")
    assert run_cli(other, "subscribers", "import", "all.csv").returncode == 0
    for email in ("-dash@example.org", "plain@example.org"):
        before, after = stored(sample, email), stored(other, email)
        assert (after.email, after.name, after.tags, after.fields) == (
            before.email,
            before.name,
            before.tags,
            before.fields,
        )
    assert stored(other, "-dash@example.org").name == '=HYPERLINK("http://evil.example","click")'
    assert stored(other, "-dash@example.org").tags == ("-vip", "@team")
    assert stored(other, "plain@example.org").fields == {"note": "=already quoted", "score": "12"}
    assert rows[0][-1] == "'@handle" and stored(other, "-dash@example.org").fields["@handle"] == "@dash"  # titles too


def test_add_remove_list_and_show(sample):
    added = run_cli(sample, "subscribers", "add", "Eve@Example.ORG", "--name", "Eve", "--tag", "news", "--tag", "vip")
    assert added.returncode == 0 and "added Eve@example.org (subscribed)" in added.stdout
    run_cli(sample, "subscribers", "add", "fay@example.org", "--tag", "news")
    removed = run_cli(sample, "subscribers", "remove", "eve@example.org")
    assert removed.returncode == 0 and "unsubscribed Eve@example.org (was subscribed)" in removed.stdout
    assert "was unsubscribed already" in run_cli(sample, "subscribers", "remove", "eve@example.org").stdout
    stranger = run_cli(sample, "subscribers", "remove", "stranger@example.org")
    assert "kept as unsubscribed, so no list mails it" in stranger.stdout
    listing = run_cli(sample, "subscribers", "list", "--status", "unsubscribed", "--tag", "NEWS")
    assert listing.stdout.splitlines() == ["Eve@example.org  unsubscribed  Eve  [news, vip]"]
    assert "1 subscriber(s)" in listing.stderr
    assert len(run_cli(sample, "subscribers", "list").stdout.splitlines()) == 3
    show = run_cli(sample, "subscribers", "show", "eve@example.org").stdout
    assert "status   unsubscribed" in show and "tags     news, vip" in show
    assert [line.split()[1:3] for line in show.splitlines() if line.startswith("  20")] == [
        ["added", "cli"],
        ["unsubscribed", "cli"],
        ["unsubscribed", "cli"],
    ]
    assert_one_line_error(run_cli(sample, "subscribers", "add", "eve@example.org"),
                          "already in the store, unsubscribed", "--resubscribe")  # fmt: skip
    again = run_cli(sample, "subscribers", "add", "eve@example.org", "--resubscribe")
    assert "resubscribed Eve@example.org (was unsubscribed)" in again.stdout


def test_forget_erases_the_person_everywhere_and_import_never_brings_them_back(sample):
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    assert run_cli(sample, "send", ISSUE, "--yes").returncode == 0  # the journal now holds ann too
    run_cli(sample, "subscribers", "import", "list.csv")
    assert outbox_recipients(sample).count("ann@example.org") == 1
    forgot = run_cli(sample, "subscribers", "forget", "Ann@Example.org")
    assert forgot.returncode == 0, forgot.stderr
    assert "erased from the store and from 1 send journal row(s) and from 1 outbox message(s)" in forgot.stdout
    assert outbox_recipients(sample).count("ann@example.org") == 0
    with sqlite3.connect(sample / ".broadsheet" / "state.db") as db:
        assert db.execute(
            "SELECT count(*) FROM recipients WHERE email LIKE 'ann@%' OR data LIKE '%Ann%'"
        ).fetchone() == (0,)
    assert "was forgotten at their request" in run_cli(sample, "subscribers", "show", "ann@example.org").stdout
    again = run_cli(sample, "subscribers", "import", "list.csv", "--update")
    assert "2 row(s) for addresses forgotten at their request: not added again" in again.stdout
    assert stored(sample, "ann@example.org") is None
    assert_one_line_error(run_cli(sample, "subscribers", "add", "ann@example.org"), "forgotten", "--resubscribe")
    sent = run_cli(sample, "send", ISSUE, "--list", "list.csv", "--transport", "outbox", "--yes")
    assert sent.returncode == 0, sent.stderr
    assert outbox_recipients(sample).count("ann@example.org") == 0  # never mailed after the request


def test_forget_removes_the_outbox_messages_to_them_by_their_parsed_recipient(sample, capsys):
    """Headers may carry the address folded, with an RFC 2047 name or an IDNA domain: each message to
    the person goes, and no other (one to a longer address, one merely naming them in its body)."""
    config = str(sample / "broadsheet.toml")
    assert main(["--config", config, "subscribers", "add", "Ann@bücher.org"]) == 0
    folder = sample / "outbox" / "issue"
    (folder / "test").mkdir(parents=True)
    body = "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"Hello ann@b\xc3\xbccher.org").decode()
    messages = {
        "1-ann.eml": "To: =?utf-8?q?Ann_L=C3=A9e?= <ANN@XN--BCHER-KVA.ORG>" + body,
        "test/1-ann.eml": "Subject: x\r\nTo: Ann\r\n <ann@xn--bcher-kva.org>\r\n\r\nhi",
        "2-cc.eml": "To: bob@example.org\r\nCc: =?utf-8?b?QW5u?= <ann@xn--bcher-kva.org>\r\n\r\nhi",
        "3-bob.eml": "To: bob@example.org" + body,
        "4-annie.eml": "To: annie@xn--bcher-kva.org\r\n\r\nhi",
    }
    for name, text in messages.items():
        (folder / name).write_bytes(text.encode("ascii"))
    capsys.readouterr()
    assert main(["--config", config, "subscribers", "forget", "ann@BÜCHER.org"]) == 0
    assert "and from 3 outbox message(s)" in capsys.readouterr().out
    assert sorted(p.name for p in folder.rglob("*.eml")) == ["3-bob.eml", "4-annie.eml"]


def test_send_uses_the_store_by_default_with_segments_and_suppressions(sample):
    run_cli(sample, "subscribers", "add", "ann@example.org", "--tag", "news")
    run_cli(sample, "subscribers", "add", "bob@example.org", "--tag", "art")
    run_cli(sample, "subscribers", "add", "cy@example.org", "--tag", "News")
    run_cli(sample, "subscribers", "remove", "cy@example.org")
    (sample / "suppressions.csv").write_text("email\nBOB@example.org\n", encoding="utf-8")
    result = run_cli(sample, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    assert "audience.db: 1 recipient(s); left out: suppressed 1, unsubscribed 1" in result.stdout
    assert outbox_recipients(sample) == ["ann@example.org"]
    (sample / "suppressions.csv").unlink()
    run_cli(sample, "subscribers", "add", "dee@example.org", "--tag", "news")
    segment = run_cli(sample, "send", ISSUE, "--yes", "--segment", "NEWS")
    assert segment.returncode == 0, segment.stderr
    assert outbox_recipients(sample) == ["ann@example.org", "dee@example.org"]
    for command in (("send", ISSUE, "--yes"), ("send", ISSUE, "--dry-run")):  # a typo mails no one: an error
        typo = run_cli(sample, *command, "--segment", "news", "--segment", "nwes")
        assert_one_line_error(typo, "audience.db", "no subscriber has the tag 'nwes'", "--segment one of: art, ")


def test_a_csv_send_is_filtered_through_the_store(sample):
    people = write_subscribers(sample / "list.csv", 4)
    with Store.for_project(sample) as store:
        store.set_status(people[1][0].upper(), "unsubscribed", source="one-click")
        store.set_status(people[2][0], "complained", source="webhook:postmark")
        store.add("other@example.org")  # the store has subscribers, but --list names the CSV
    result = run_cli(sample, "send", ISSUE, "--list", "list.csv", "--yes")
    assert result.returncode == 0, result.stderr
    assert "2 recipient(s); left out: unsubscribed, bounced, complained or forgotten in the store 2" in result.stdout
    assert outbox_recipients(sample) == [people[0][0], people[3][0]]


@pytest.mark.slow
def test_an_unsubscribe_during_a_running_campaign_is_honoured(sample):
    """A real send in its own process, held by the SMTP server after its first message (one connection,
    one recipient a batch: nobody else is claimed yet); another process unsubscribes the last reader."""
    with Store.for_project(sample) as store:
        for i in range(8):
            store.add(f"reader{i}@example.org")
    sink = Sink(hold_after=1)
    env = {k: v for k, v in os.environ.items() if k != "BROADSHEET_DEBUG"}
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send={"transport": "smtp", "connections": 1, "batch_size": 1},
            smtp={"host": host, "port": port, "security": "none", "timeout": 10},
        )
        send = subprocess.Popen([sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes"], cwd=sample, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not sink.received and send.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            with Store.for_project(sample) as store:  # as `serve` records a one-click unsubscribe
                assert store.set_status("reader7@example.org", "unsubscribed", source="one-click")
            sink.released.set()
            out, err = send.communicate(timeout=60)
        finally:
            sink.released.set()
            send.kill()
    assert send.returncode == 0, err
    assert sorted(sink.recipients()) == [f"reader{i}@example.org" for i in range(7)]
    with sqlite3.connect(sample / ".broadsheet" / "state.db") as db:
        state, detail = db.execute(
            "SELECT state, detail FROM recipients WHERE email = 'reader7@example.org'"
        ).fetchone()
    assert state == "skipped" and "unsubscribed" in detail
    assert "sent 7" in out and "skipped 1" in out
    status = run_cli(sample, "status", ISSUE)
    assert "skipped 1" in status.stdout


def test_a_store_send_run_again_mails_only_who_joined_since(sample):
    run_cli(sample, "subscribers", "add", "ann@example.org")
    run_cli(sample, "subscribers", "add", "bob@example.org")
    assert run_cli(sample, "send", ISSUE, "--yes").returncode == 0
    unchanged = run_cli(sample, "send", ISSUE, "--yes")
    assert (
        "unchanged since this campaign started; resuming" in unchanged.stdout and "nothing to send" in unchanged.stdout
    )
    run_cli(sample, "subscribers", "add", "cy@example.org")
    again = run_cli(sample, "send", ISSUE, "--yes")
    assert again.returncode == 0, again.stderr
    assert "audience.db: 3 recipient(s)" in again.stdout
    assert outbox_recipients(sample) == ["ann@example.org", "bob@example.org", "cy@example.org"]


def test_check_counts_unconfirmed_rows_as_left_out(sample):
    (sample / "list.csv").write_text("email,status\nann@example.org,unconfirmed\nbob@example.org,\n", encoding="utf-8")
    result = run_cli(sample, "subscribers", "check", "list.csv")
    assert result.returncode == 0 and "1 recipient(s)" in result.stdout and "left out, unconfirmed: 1" in result.stdout


def test_values_from_forms_and_csvs_cannot_drive_the_terminal(sample):
    (sample / "list.csv").write_text('email,name,note\nann@example.org,"Ann \x1b[31mRed",\"two\nlines"\n',
                                     encoding="utf-8")  # fmt: skip
    run_cli(sample, "subscribers", "import", "list.csv")
    listing = run_cli(sample, "subscribers", "list").stdout
    show = run_cli(sample, "subscribers", "show", "ann@example.org").stdout
    for output in (listing, show):
        assert "\x1b" not in output and "\\x1b[31mRed" in output
    assert "note     two\\nlines" in show
    assert_one_line_error(run_cli(sample, "subscribers", "add", "bob@example.org", "--tag", "a;b"), "tag 'a;b'")


FUZZ_PIECES = [
    "\r",
    "\n",
    "\r\n",
    '"',
    "=",
    "+",
    "-",
    "@",
    "\u200b",
    ",",
    "'",
    ";",
    " ",
    "\t",
    "a",
    "Zé",
    "1",
    "x@y.org",
]


def fuzzed(random: random_module.Random, *, leave_out: str = "") -> str:
    """A short text of FUZZ_PIECES (those holding a character of ``leave_out`` left out)."""
    pieces = [piece for piece in FUZZ_PIECES if not set(piece) & set(leave_out)]
    return "".join(random.choice(pieces) for _ in range(random.randint(1, 8)))


def test_every_row_export_writes_import_reads_back_as_it_was(sample, tmp_path, capsys):
    """A seeded fuzz through the real `subscribers export` and `subscribers import`: quotes, CR, LF, CRLF,
    formulas, zero-width characters, delimiters and address-like text in names, tags and fields."""
    random = random_module.Random(20261207)
    with Store.for_project(sample) as store:
        for n in range(400):
            fields = {title: fuzzed(random) for title in ("note", "=calc", "@handle") if random.random() < 0.8}
            store.add(f"{random.choice(['', '-', '=', '+'])}r{n}@example.org", name=fuzzed(random, leave_out="\r\n"),
                      fields=fields, tags=[fuzzed(random, leave_out=";\r\n") for _ in range(random.randint(0, 3))],
                      status=random.choice(STATUS_CHOICES))  # fmt: skip
        before = [(s.email, s.name, s.status, s.tags, s.fields) for s in store.subscribers()]
    assert main(["--config", str(sample / "broadsheet.toml"), "subscribers", "export", str(tmp_path / "all.csv")]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "broadsheet.toml").write_text('name = "Other"\nfrom = "x@example.org"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(other / "broadsheet.toml"), "subscribers", "import", str(tmp_path / "all.csv")]) == 0
    assert "bad row" not in capsys.readouterr().out
    with Store.for_project(other) as store:
        after = [(s.email, s.name, s.status, s.tags, s.fields) for s in store.subscribers()]
    assert len(after) == len(before) == 400
    assert sorted(after) == sorted(before)


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_list_that_is_not_a_regular_file_is_one_line_and_never_waits(sample, kind):
    """A FIFO would wait for a writer, /dev/zero never ends: refused before reading, not "not found"."""
    (sample / "list.csv").write_text(LIST, encoding="utf-8")
    odd = sample / "odd.csv"
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    for args in (("subscribers", "check", "odd.csv"), ("subscribers", "import", "odd.csv"),
                 ("send", ISSUE, "--dry-run", "--list", "odd.csv")):  # fmt: skip
        assert_one_line_error(run_cli(sample, *args), "odd.csv", "not a regular file")
    configure(sample, send={"transport": "outbox", "list": "list.csv", "suppressions": "odd.csv"})
    suppressions = run_cli(sample, "send", ISSUE, "--dry-run")  # never silently no one suppressed
    assert_one_line_error(suppressions, "odd.csv" if kind == "fifo" else "/dev/zero", "not a regular file")

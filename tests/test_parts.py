"""A long list read in parts by separate processes: the same rows, lines, problems and journal as one reader."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from support.parts import running_readers, stopped_while_parts_are_read, write_long_list

from broadsheet.audience import RowProblem, SubscriberList
from broadsheet.audience import parts as list_parts
from broadsheet.audience.addresses import AddressChecker
from broadsheet.audience.parts import SENTINEL, CutInsideRow, Part, cut, in_processes, read_part
from broadsheet.audience.subscriber_list import CHUNK, list_chunks
from broadsheet.campaign import Journal, parts, prepare_campaign
from broadsheet.errors import AudienceError
from broadsheet.store import Store
from broadsheet.store.recipients import CheckedList

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"


class Sample:
    """A list with what a reader must get right: a BOM, CRLF, blank rows, bad rows, statuses, quoted
    values (one with a line break), repeats of an address far apart, tags, an extra column; and what a
    reader should make of it, worked out here, not by the code under test."""

    def __init__(self, rows: int = 600):
        lines = ["\ufeffemail,name,status,tags,city"]
        self.readers: set[str] = set()  # lower-cased addresses of subscribed rows
        self.bad_lines: list[int] = []
        self.unconfirmed = 0
        self.offered = 0  # subscribed rows, repeats included
        line = 2  # of the next row
        for i in range(rows):
            if i % 97 == 5:
                lines.append(f"not-an-address-{i},Bad {i},,,Gent")
                self.bad_lines.append(line)
            elif i % 89 == 7:
                lines.append("")
            elif i % 83 == 3:
                lines.append(f'r{i}@example.org,Reader {i},,news,"Gent\r\nKouter {i}"')  # two lines
                self.readers.add(f"r{i}@example.org")
                self.offered += 1
                line += 1
            elif i % 71 == 1:
                lines.append(f"p{i}@example.org,Pending {i},unconfirmed,,Brugge")
                self.unconfirmed += 1
            else:
                lines.append(f'"R{i % 250}@Example.org","Reader, {i}",,members;news,"Kortrijk {i}"')
                self.readers.add(f"r{i % 250}@example.org")
                self.offered += 1
            line += 1
        self.text = "\r\n".join(lines) + "\r\n"


def long_note_in_the_middle() -> str:
    """200 rows; the 101st (line 102) has a quoted note of 300 lines, across the middle of the file."""
    rows = [f"r{i}@example.org,Reader {i}," for i in range(200)]
    rows[100] = 'long@example.org,Long,"' + "\n".join(f"line {n}" for n in range(300)) + '"'
    return "email,name,note\n" + "\n".join(rows) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "list.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


def journal_of(folder: Path) -> Journal:
    folder.mkdir()
    return Journal.for_project(folder)


def loaded_rows(journal: Journal) -> list[tuple[str, int, str]]:
    return journal.db.execute("SELECT email, line, data FROM recipients ORDER BY id").fetchall()


def start(journal: Journal):
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    return campaign


def once_and_in_parts(tmp_path, monkeypatch, make_list):
    """The list ``make_list(root)`` loaded into a journal in ``tmp_path/one`` by one process (as a send does)
    and into one in ``tmp_path/parts`` by three part readers: ((rows, list), (rows, list))."""

    def load(folder: str, split: bool):
        root = tmp_path / folder
        root.mkdir()
        recipients = make_list(root)
        with Journal.for_project(root) as journal:
            if split:
                recipients.deduplicate = False  # as prepare_campaign sets it for the load
                assert parts.load_in_parts(journal, start(journal), "list-1", recipients, processes=3) is not None
                assert not list((root / ".broadsheet").glob(".staging-*"))
            else:
                prepare_campaign(journal, slug="issue-1", transport="smtp", issue_dir="issues/issue-1",
                                 fingerprint="list-1", subscribers=recipients)  # fmt: skip
            return loaded_rows(journal), recipients

    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 10**12)
    one = load("one", split=False)
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    return one, load("parts", split=True)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_the_parts_read_together_give_what_one_reader_gives(tmp_path, count):
    sample = Sample()
    path = write(tmp_path, sample.text)
    pieces = cut(path, count)
    assert len(pieces) == count
    assert pieces[0].first_line == 2 and pieces[-1].end is None
    one = [row for chunk in list_chunks(path, AddressChecker(), wanted=("subscribed", "unconfirmed")) for row in chunk]
    together = [
        row
        for piece in pieces
        for chunk in read_part(piece, AddressChecker(), wanted=("subscribed", "unconfirmed"))
        for row in chunk
    ]
    assert together == one
    assert [row.line for row in one if hasattr(row, "reason")] == sample.bad_lines


def test_a_row_that_reads_like_the_sentinel_is_an_ordinary_row(tmp_path):
    """The file's own line with the sentinel's text, as the last line of a part and of a full chunk (the
    part's rows fill its first chunk exactly), is read as any row."""
    head = "".join(f"r{i:05d}@example.org,Reader {i:05d}\n" for i in range(CHUNK - 1))
    tail = "".join(f"r{i:05d}@example.org,Reader {i:05d}\n" for i in range(CHUNK, 2 * CHUNK - 1))  # as long
    path = write(tmp_path, "email,name\n" + head + SENTINEL + tail)
    first, second = cut(path, 2)
    assert path.read_bytes()[: first.end].endswith(SENTINEL.encode())  # the part ends with that line
    one = [row for chunk in list_chunks(path, AddressChecker()) for row in chunk]
    together = [row for piece in (first, second) for chunk in read_part(piece, AddressChecker()) for row in chunk]
    assert together == one and len(one) == 2 * CHUNK - 1
    problem = one[CHUNK - 1]
    assert problem == RowProblem(CHUNK + 1, SENTINEL.strip(), problem.reason)  # an invalid address, reported


def test_a_cut_inside_a_quoted_value_is_noticed(tmp_path):
    path = write(tmp_path, long_note_in_the_middle())
    first, _second = cut(path, 2)
    with pytest.raises(CutInsideRow):
        for _chunk in read_part(first, AddressChecker()):
            pass


def test_a_list_loaded_in_parts_is_the_list_loaded_by_one_process(tmp_path, monkeypatch):
    sample = Sample()
    path = write(tmp_path, sample.text)
    (expected, alone), (loaded, split) = once_and_in_parts(tmp_path, monkeypatch, lambda root: SubscriberList(path))
    assert loaded == expected  # address order, the first line of each address kept
    assert {email.lower() for email, _line, _data in loaded} == sample.readers
    assert [problem.line for problem in split.problems] == [problem.line for problem in alone.problems]
    assert [problem.line for problem in split.problems] == sample.bad_lines
    duplicates = sample.offered - len(sample.readers)
    assert split.skipped == alone.skipped == {"duplicate": duplicates, "unconfirmed": sample.unconfirmed}


def test_a_list_cut_inside_a_row_is_loaded_by_one_process_instead(tmp_path, monkeypatch):
    path = write(tmp_path, long_note_in_the_middle())
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        subscribers = SubscriberList(path)
        subscribers.deduplicate = False
        assert parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=2) is None
        assert loaded_rows(journal) == []  # nothing half-loaded
        prepared = prepare_campaign(journal, slug="issue-1", transport="smtp", issue_dir="issues/issue-1",
                                    fingerprint="list-2", subscribers=SubscriberList(path))  # fmt: skip
        assert prepared.loaded == 200
        [long] = [row for row in loaded_rows(journal) if row[0] == "long@example.org"]
        assert long[1] == 102 and "line 299" in long[2]
        assert not list((tmp_path / "project" / ".broadsheet").glob(".staging-*"))


def test_a_part_that_is_not_utf8_names_its_line(tmp_path, monkeypatch):
    text = Sample(400).text.encode("utf-8")
    lines = text.split(b"\r\n")
    lines[350] = b"zoe@example.org,Zo\xeb,,,Gent"  # Latin-1, in the second part
    path = tmp_path / "list.csv"
    path.write_bytes(b"\r\n".join(lines))
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        subscribers = SubscriberList(path)
        subscribers.deduplicate = False
        with pytest.raises(AudienceError) as caught:
            parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=2)
        assert caught.value.where == f"{path}:351" and "UTF-8" in caught.value.message
        assert loaded_rows(journal) == []
        assert not list((tmp_path / "project" / ".broadsheet").glob(".staging-*"))


@pytest.mark.parametrize("setting", ["segment", "suppressed", "opted out"])
def test_segments_suppressions_and_opt_outs_apply_across_the_parts(tmp_path, monkeypatch, setting):
    """The pass is begun once (its ledger: suppressed and opted-out addresses) and run by every part: an
    address opted out on a row in one part is left out of every other; a missing segment tag is an error."""
    sample = Sample(600)
    text = sample.text + "r5@example.org,Gone,unsubscribed,,Gent\r\n"  # r5 is subscribed in the first part
    path = write(tmp_path, text)
    suppressions = tmp_path / "suppressions.csv"
    suppressions.write_text("email\nR9@example.org\nr11@EXAMPLE.org\n" if setting == "suppressed" else "email\n")
    segments = ["members"] if setting == "segment" else ()

    def the_list(root: Path) -> SubscriberList:
        return SubscriberList(path, segments=segments, suppressions=suppressions)

    (one_rows, one), (split_rows, split) = once_and_in_parts(tmp_path, monkeypatch, the_list)
    assert split_rows == one_rows
    assert split.skipped == one.skipped and split.problems == one.problems
    emails = {email.lower() for email, _line, _data in split_rows}
    assert "r5@example.org" not in emails and split.skipped["unsubscribed"] > 1
    if setting == "suppressed":
        assert not {"r9@example.org", "r11@example.org"} & emails and split.skipped["suppressed"] > 2
    if setting == "segment":
        assert split.skipped["not in segment"] > 0
        assert all('"members"' in data for _email, _line, data in split_rows)


def test_a_segment_tag_found_in_one_part_only_is_found(tmp_path, monkeypatch):
    path = write(tmp_path, Sample(300).text + "late@example.org,Late,,late-tag,Gent\r\n")  # on the last row only
    subscribers = SubscriberList(path, segments=["Late-Tag"])
    subscribers.deduplicate = False
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        assert parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=3) == 1
        assert [email for email, _line, _data in loaded_rows(journal)] == ["late@example.org"]


def test_a_missing_segment_tag_is_an_error_before_the_pass(tmp_path, monkeypatch):
    path = write(tmp_path, Sample(100).text)
    subscribers = SubscriberList(path, segments=["no-such-tag"])
    subscribers.deduplicate = False
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        with pytest.raises(AudienceError, match="no subscriber has the tag 'no-such-tag'"):
            parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=2)
        assert not list((tmp_path / "project" / ".broadsheet").glob(".staging-*"))


def test_a_list_that_deduplicates_itself_is_read_by_one_process(tmp_path, monkeypatch):
    subscribers = SubscriberList(write(tmp_path, Sample(100).text))  # deduplicate: the ledger's seen is written
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        assert parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=2) is None


def where_it_starts(number: int, part: Part) -> tuple[int, int]:
    return number, part.first_line


def fails(number: int, part: Part) -> None:
    raise OSError(28, "No space left on device")


def refuses(number: int, part: Part) -> None:
    raise AudienceError("the list is not UTF-8", where=f"{part.path}:{part.first_line}", fix="save it as UTF-8")


def test_part_readers_answer_in_order_refuse_in_one_line_and_fail_back_to_one_process(tmp_path):
    path = write(tmp_path, Sample(300).text)
    pieces = cut(path, 3)
    assert in_processes(where_it_starts, pieces) == [(number, piece.first_line) for number, piece in enumerate(pieces)]
    assert in_processes(fails, pieces) is None  # the one-process read then meets the full disk and says so
    with pytest.raises(AudienceError) as caught:
        in_processes(refuses, pieces)
    assert caught.value.where == f"{path}:2" and caught.value.fix == "save it as UTF-8"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_a_send_while_parts_are_read_leaves_no_reader_staging_file_or_traceback(project, signum):
    """A real `broadsheet send` of a list long enough to be read in parts, stopped while it loads."""
    marker = f"list-{signum}-{os.getpid()}.csv"
    write_long_list(project / marker)
    env = {**os.environ, "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"}
    command = [sys.executable, "-m", "broadsheet", "send", ISSUE, "--list", marker, "--transport", "outbox", "--yes"]
    returncode, err = stopped_while_parts_are_read(command, project, marker, signum, env)
    assert returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert running_readers(marker) == []
    assert not list((project / ".broadsheet").glob(".staging-*"))
    assert not (project / "outbox").exists() or not list((project / "outbox").rglob("*.eml"))


def test_a_list_checked_against_the_store_is_checked_in_every_part(tmp_path, monkeypatch):
    """A CSV sent while the project has a subscriber store: whom the store knows as unsubscribed, bounced,
    complained or forgotten is left out by every part reader, and counted once."""
    sample = Sample(600)
    path = write(tmp_path, sample.text)
    # the forgotten addresses' keyed hashes
    monkeypatch.setenv("BROADSHEET_SECRET", "store-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")

    def checked_list(root: Path) -> CheckedList:
        with Store.for_project(root) as store:
            store.add("r7@example.org", status="unsubscribed")  # in the first part
            store.set_status("R240@example.org", "bounced", source="cli")  # in the last
            store.add("r120@example.org")
            store.forget("r120@example.org")
        return CheckedList(SubscriberList(path), root)

    (one_rows, one), (split_rows, split) = once_and_in_parts(tmp_path, monkeypatch, checked_list)
    assert split_rows == one_rows
    assert not {"r7@example.org", "r240@example.org", "r120@example.org"} & {e.lower() for e, _l, _d in split_rows}
    assert split.left_out == one.left_out > 3  # each of the three, on every row that names them
    assert split.skipped == one.skipped and split.problems == one.problems


def test_a_segment_tag_on_a_row_across_a_cut_sends_the_list_to_one_process_not_to_an_error(tmp_path, monkeypatch):
    """The first read (opted-out rows, tags) notices a cut inside a row too: its tags would be wrong."""
    rows = [f"r{i}@example.org,,news" for i in range(200)]
    rows[100] = 'vip@example.org,"' + "\n".join(f"line {n}" for n in range(300)) + '",vip'  # across the middle
    path = write(tmp_path, "email,note,tags\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    with journal_of(tmp_path / "project") as journal:
        subscribers = SubscriberList(path, segments=["vip"])
        subscribers.deduplicate = False
        assert parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=2) is None
        prepared = prepare_campaign(journal, slug="issue-1", transport="smtp", issue_dir="issues/issue-1",
                                    fingerprint="list-2", subscribers=SubscriberList(path, segments=["vip"]))  # fmt: skip
        assert prepared.loaded == 1


def test_the_sentinel_is_no_tag_when_tags_come_first(tmp_path, monkeypatch):
    path = write(tmp_path, "tags,email\n" + "".join(f"news,r{i}@example.org\n" for i in range(300)))
    monkeypatch.setattr(list_parts, "SPLIT_BYTES", 0)
    for segment in ("nosuch", SENTINEL.strip()):
        subscribers = SubscriberList(path, segments=[segment])
        subscribers.deduplicate = False
        with journal_of(tmp_path / f"project-{len(segment)}") as journal, pytest.raises(AudienceError) as caught:
            parts.load_in_parts(journal, start(journal), "list-1", subscribers, processes=3)
        assert caught.value.fix == "--segment one of: news"

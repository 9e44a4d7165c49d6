"""The subscriber list: CSV dialects, validation, statuses, suppression, segments, streaming."""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import pytest

from broadsheet.core.audience import RowProblem, list_fingerprint
from broadsheet.core.audience.spreadsheet import FORMULA_STARTS, as_written, spreadsheet_safe
from broadsheet.core.errors import AudienceError
from broadsheet.data.subscriber_list import CsvList


def write(tmp_path: Path, text: str, name: str = "subscribers.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def emails(subscribers: CsvList) -> list[str]:
    return [subscriber.email for subscriber in subscribers]


def test_reads_fields_and_normalises(tmp_path):
    path = write(tmp_path, "Email,Name,City\nJane.Doe@Example.COM,Jane Doe,Ghent\n")
    [jane] = CsvList(path)
    assert jane.email == "Jane.Doe@example.com"
    assert (jane.name, jane.first_name, jane.line) == ("Jane Doe", "Jane", 2)
    assert jane.fields == {"City": "Ghent"}  # the other columns; personal_fields adds email, name, first_name


def test_first_name_column_wins_over_name(tmp_path):
    path = write(tmp_path, "email,name,first_name\na@example.org,Alexandra Smith,Sasha\n")
    assert next(iter(CsvList(path))).first_name == "Sasha"


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,name\nzoe@example.org,Zo\xc3\xab\n")
    [zoe] = CsvList(path)
    assert (zoe.email, zoe.name) == ("zoe@example.org", "Zoë")


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_delimiter_sniffed_from_header(tmp_path, delimiter):
    text = delimiter.join(["email", "name", "tags"]) + "\n"
    text += delimiter.join(["a@example.org", "Ann, Jr.", "x,y" if delimiter == ";" else "x;y"]) + "\n"
    [ann] = CsvList(write(tmp_path, text))
    assert ann.name == "Ann, Jr."
    assert ann.tags == ("x", "y")


def test_semicolon_file_takes_tags_separated_by_quoted_semicolons_as_documented(tmp_path):
    text = 'email;tags\na@example.org;"members;flanders"\nb@example.org;events,china\n'
    subscribers = CsvList(write(tmp_path, text), segments=["flanders", "china"])
    assert [(s.email, s.tags) for s in subscribers] == [
        ("a@example.org", ("members", "flanders")),
        ("b@example.org", ("events", "china")),
    ]


def test_non_utf8_file_names_file_and_line(tmp_path):
    path = write(tmp_path, "email,name\na@example.org,Ann\nb@example.org,Zoë\n", encoding="latin-1")
    with pytest.raises(AudienceError) as caught:
        list(CsvList(path))
    assert caught.value.where == f"{path}:3"
    assert "UTF-8" in caught.value.fix


def test_missing_email_column_says_the_fix(tmp_path):
    path = write(tmp_path, "mail,name\na@example.org,Ann\n")
    with pytest.raises(AudienceError) as caught:
        list(CsvList(path))
    assert caught.value.where == f"{path}:1"
    assert "'email'" in caught.value.fix and "mail" in caught.value.fix


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(AudienceError, match="no header"):
        list(CsvList(write(tmp_path, "")))


def test_bad_rows_are_recorded_with_lines_and_skipped(tmp_path):
    text = (
        "email,name,status\n"
        "good@example.org,Good,\n"
        "not-an-address,Bad,\n"
        ",Nobody,\n"
        "odd@example.org,Odd,maybe\n"
        '"crlf@example.org","Eve\r\nBcc: x@evil.test",\n'
        "too@example.org,Many,,values\n"
        "\n"
        "last@example.org,Last,subscribed\n"
    )
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == ["good@example.org", "last@example.org"]
    lines = {problem.line: problem for problem in subscribers.problems}
    assert sorted(lines) == [3, 4, 5, 6, 8]
    assert lines[3].email == "not-an-address" and lines[3].reason.startswith("invalid address")
    assert lines[4].reason == "missing email"
    assert "unknown status 'maybe'" in lines[5].reason
    assert lines[6].reason == "line break in the name"
    assert "4 values for 3 columns" in lines[8].reason
    assert all(isinstance(problem, RowProblem) for problem in subscribers.problems)


def test_trailing_empty_values_are_not_a_problem(tmp_path):
    subscribers = CsvList(write(tmp_path, "email,name\nann@example.org,Ann,,\n"))
    assert emails(subscribers) == ["ann@example.org"] and subscribers.problems == []


def test_statuses_only_subscribed_receive(tmp_path):
    text = "email,status\na@example.org,\nb@example.org,Subscribed\nc@example.org,unsubscribed\n"
    text += "d@example.org,bounced\ne@example.org,complained\n"
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == ["a@example.org", "b@example.org"]
    assert subscribers.skipped == {"unsubscribed": 1, "bounced": 1, "complained": 1}


def test_opt_out_on_any_row_wins_over_a_later_or_earlier_subscribed_row(tmp_path):
    text = "email,status\nAnn@Example.org,\nann@example.org,unsubscribed\nbob@example.org,\n"
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == ["bob@example.org"]
    assert subscribers.skipped == {"unsubscribed": 2}


def test_duplicates_sent_once_and_counted(tmp_path):
    text = "email\nann@example.org\nANN@EXAMPLE.ORG\nAnn@example.org\nbob@example.org\n"
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == ["ann@example.org", "bob@example.org"]
    assert subscribers.skipped == {"duplicate": 2}
    assert subscribers.problems == []


def test_suppression_file_always_wins(tmp_path):
    path = write(tmp_path, "email,status\nann@example.org,subscribed\nbob@example.org,\n")
    suppressions = write(tmp_path, "\ufeffEMAIL;reason\nANN@example.ORG;manual\n", name="suppressions.csv")
    subscribers = CsvList(path, suppressions=suppressions)
    assert emails(subscribers) == ["bob@example.org"]
    assert subscribers.skipped == {"suppressed": 1}


def test_missing_suppression_file_suppresses_nobody(tmp_path):
    path = write(tmp_path, "email\nann@example.org\n")
    assert emails(CsvList(path, suppressions=tmp_path / "none.csv")) == ["ann@example.org"]


def test_segments_keep_any_tag(tmp_path):
    text = "email,tags\na@example.org,news;Events\nb@example.org,jobs\nc@example.org,\nd@example.org,events\n"
    subscribers = CsvList(write(tmp_path, text), segments=["events", "news"])
    assert emails(subscribers) == ["a@example.org", "d@example.org"]
    assert subscribers.skipped == {"not in segment": 2}


def test_a_segment_no_subscriber_has_is_an_error_naming_the_tags(tmp_path):
    text = "email,tags\na@example.org,news;Events\nb@example.org,jobs\n"
    with pytest.raises(AudienceError) as raised:
        emails(CsvList(write(tmp_path, text), segments=["events", "evnets"]))
    assert "no subscriber has the tag 'evnets'" in raised.value.message
    assert raised.value.fix == "--segment one of: Events, jobs, news" and "subscribers.csv" in raised.value.where


def test_duplicate_counts_only_among_recipients(tmp_path):
    text = "email,tags\nann@example.org,jobs\nann@example.org,events\n"
    assert emails(CsvList(write(tmp_path, text), segments=["events"])) == ["ann@example.org"]


def test_quoted_multiline_values_keep_line_numbers(tmp_path):
    text = 'email,note\na@example.org,"two\nlines"\nbad,x\n'
    subscribers = CsvList(write(tmp_path, text))
    [ann] = subscribers
    assert ann.fields["note"] == "two\nlines"
    assert subscribers.problems[0].line == 4


def test_an_unclosed_quote_swallowing_rows_is_reported_with_the_lines_it_took(tmp_path):
    text = 'email,name\nann@example.org,"Ann\nbob@example.org,Bob\ncarl@example.org,Carl\n'
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == []
    [problem] = subscribers.problems
    assert problem.line == 2 and "quote" in problem.reason and "lines 2-4" in problem.reason


def test_a_lone_cr_in_an_unquoted_value_is_a_bad_row_not_an_unreadable_list(tmp_path):
    subscribers = CsvList(write(tmp_path, "email,name\nann@example.org,Ann\rSmith\nbob@example.org,Bob\n"))
    assert emails(subscribers) == ["bob@example.org"]
    [problem] = subscribers.problems
    assert problem.line == 2 and "line break" in problem.reason


def test_a_header_the_csv_reader_cannot_read_is_an_error_naming_line_1(tmp_path):
    path = write(tmp_path, "email,name\rann@example.org,Ann\r")  # old Mac line ends: CR only
    with pytest.raises(AudienceError) as caught:
        list(CsvList(path))
    assert caught.value.where == f"{path}:1" and "line break" in caught.value.message


def test_problems_are_one_line_each_and_a_nul_in_the_name_is_one(tmp_path):
    text = 'email,name\n"ann@example.org\r\nBcc: x@example.net",Ann\nbob@example.org,B\x00b\ncarl@example.org,Carl\n'
    subscribers = CsvList(write(tmp_path, text))
    assert emails(subscribers) == ["carl@example.org"]  # send would refuse Bob's name: check says so first
    first, second = subscribers.problems
    assert first.email == "ann@example.org\\r\\nBcc: x@example.net"  # printed on one line
    assert (second.line, second.reason) == (4, "NUL character in the name")


def test_each_pass_starts_counting_afresh(tmp_path):
    subscribers = CsvList(write(tmp_path, "email\nann@example.org\nann@example.org\nbad\n"))
    list(subscribers)
    list(subscribers)
    assert subscribers.skipped == {"duplicate": 1}
    assert len(subscribers.problems) == 1


def test_large_list_is_streamed(tmp_path):
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        out.writelines(f"reader{i}@domain{i % 97}.example.org,Reader {i}\n" for i in range(20_000))
    stream = iter(CsvList(path))
    assert isinstance(stream, types.GeneratorType)
    assert next(stream).email == "reader0@domain0.example.org"
    assert sum(1 for _ in stream) == 19_999


def test_list_fingerprint_is_sha256_of_bytes(tmp_path):
    path = write(tmp_path, "email\nann@example.org\n")
    assert list_fingerprint(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "address",
    [
        "Jane@Example.COM",
        "a+b@x.org",
        "Postmaster@X.org",
        "a@bücher.de",
        "a..b@x.org",
        "a@b",
        "x@localhost",
        "ü@x.org",
        '"a b"@x.org',
        "a@x.invalid",
        "a@-x.org",
        "a@x_y.org",
        "." + "a" * 250 + "@x.org",
        "a." + "@x.org",
        ".a@x.org",
        "a@x..org",
        "a@x.org.",
        "a@.x.org",
        "a" * 64 + "@x.org",
        "a" * 65 + "@x.org",
        "b@" + "x" * 63 + ".org",
        "b@" + "x" * 64 + ".org",
        "a@x.o",
        "a@x.123",
        "a@1.2.3.4",
        "a@[127.0.0.1]",
        "!#$%&'*+/=?^_`{|}~-@x.org",
        "a@xn--bcher-kva.de",
        "a@XN--BCHER-KVA.DE",
        "ABUSE@x.org",
        "a b@x.org",
        " a@x.org ",
        "a@x.org\n",
        "a\t@x.org",
        "a@@x.org",
        "@x.org",
        "a@",
        "a(b)@x.org",
        "a@x.local",
        "a@x.com-",
    ],
)
def test_fast_address_check_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress

    try:
        info = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)  # normalise strips
        expected = f"{info.local_part}@{info.ascii_domain}"
    except EmailNotValidError:
        expected = None
    checker = AddressChecker()
    for _ in range(2):  # the second time from the domain cache
        try:
            assert checker.normalise(address) == expected
        except InvalidAddress:
            assert expected is None


def test_a_long_list_is_checked_against_the_ledger_across_chunks(tmp_path, monkeypatch):
    """Duplicates, opt-outs and suppressions are found whichever chunk their first row was in."""
    from broadsheet.data import subscriber_list

    monkeypatch.setattr(subscriber_list, "CHUNK", 3)
    rows = [
        "a@x.org,",
        "b@x.org,",
        "c@x.org,bounced",
        "A@x.org,",
        "d@x.org,",
        "b@X.ORG,",
        "c@x.org,",
        "e@x.org,unsubscribed",
        "e@x.org,complained",
        "f@x.org,",
        "d@x.org,",
        "s@x.org,",
    ]
    path = write(tmp_path, "email,status\n" + "\n".join(rows) + "\n")
    suppressions = write(tmp_path, "email\nS@x.org\n", name="suppressions.csv")
    subscribers = CsvList(path, suppressions=suppressions)
    got = [(s.email, s.line) for s in subscribers]
    assert got == [("a@x.org", 2), ("b@x.org", 3), ("d@x.org", 6), ("f@x.org", 11)]
    assert subscribers.skipped == {"duplicate": 3, "bounced": 2, "unsubscribed": 1, "complained": 1, "suppressed": 1}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Ann",
        "O'Brien",
        "'",
        "''",
        "=1+2",
        "'=1+2",
        "''=x",
        "-30",
        "+1.5",
        "'-30",
        "-",
        "-x",
        "@here",
        "\tindented",
        "\rreturn",
        "-dash@example.org",
        "'plain",
    ],
)
def test_a_cell_written_spreadsheet_safe_reads_back_as_it_was(value):
    written = spreadsheet_safe(value)
    assert as_written(written) == value
    if value[:1] in FORMULA_STARTS and value not in ("-30", "+1.5"):
        assert written.startswith("'")  # shown as text, never run
    if value in ("Ann", "O'Brien", "-30", "+1.5", "'plain", ""):
        assert written == value  # nothing to guard: written as it is


def test_a_known_column_named_twice_is_one_line_naming_the_header(tmp_path):
    """email,name,first_name,first_name: which first name is meant? Neither is guessed."""
    path = tmp_path / "list.csv"
    path.write_text("email,name,First_Name,first_name\nann@example.org,Ann Lee,Ann,Annie\n", encoding="utf-8")
    with pytest.raises(AudienceError) as raised:
        list(CsvList(path))
    assert raised.value.where == f"{path}:1" and "'first_name' 2 times" in str(raised.value)

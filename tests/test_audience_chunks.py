"""A long list read a chunk at a time, column by column: the same rows, problems and addresses as row by row."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from broadsheet.core.audience import RowProblem, Subscriber
from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress
from broadsheet.core.audience.csvfile import CsvFile, _unreadable, open_csv
from broadsheet.data.store.staged import TagSets, staged_chunks
from broadsheet.data.subscriber_list import STATUSES, ChunkColumns, Columns, RowReader, list_column_chunks
from broadsheet.usecases.campaign.recipients import journal_chunks

LOCALS = [
    "a",
    "Jane.Doe",
    "x_y",
    "a+tag",
    "o'brien",
    "!#$%&'*+/=?^_`{|}~-",
    "info",
    "ABUSE",
    "Support",
    "news",
    "a" * 64,
]
LOCAL_FAULTS = [".a", "a.", "a..b", "a b", "a(b)", '"a"', "ä", "", "a@b", "a\t", "a" * 65]
DOMAINS = ["x.org", "Example.COM", "xn--bcher-kva.de", "XN--BCHER-KVA.DE", "1.2.3.4", "x.123", "x.o", "b" * 63 + ".org"]
DOMAIN_FAULTS = [
    "",
    "x.local",
    "x.com-",
    "-x.com",
    "[127.0.0.1]",
    "bücher.de",
    "x..org",
    "x_y.org",
    "b" * 64 + ".org",
    "x",
]


def tricky_address(pick: random.Random) -> str:
    local = pick.choice(LOCAL_FAULTS if pick.random() < 0.2 else LOCALS)
    domain = pick.choice(DOMAIN_FAULTS if pick.random() < 0.2 else DOMAINS)
    address = f"{local}@{domain}"
    roll = pick.random()
    if roll < 0.05:
        address = address.upper()
    elif roll < 0.1:
        address = address + "@" + pick.choice(DOMAINS)
    elif roll < 0.13:
        address = address.replace("@", "")
    elif roll < 0.16:
        address = "a" * 240 + address  # past the length limit
    return address


def full_check(address: str) -> str | None:
    try:
        info = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return f"{info.local_part}@{info.ascii_domain}"


@pytest.mark.parametrize("seed", range(8))
def test_the_many_address_check_accepts_and_refuses_what_email_validator_does(seed):
    pick = random.Random(seed)
    addresses = [tricky_address(pick) for _ in range(400)]
    checker = AddressChecker()
    for _ in range(2):  # the second time from the domain cache
        fast = checker.normalise_plain(addresses)
        assert len(fast) == len(addresses)
        for address, normalised in zip(addresses, fast, strict=True):
            if normalised is not None:  # taken on the fast path: exactly what the full check gives
                assert normalised == full_check(address), address
            try:
                one = checker.normalise(address)
            except InvalidAddress:
                one = None
            assert one == full_check(address), address
            assert normalised in (None, one)
    assert sum(normalised is not None for normalised in fast) > 100  # the fast path is taken


def test_the_many_address_check_takes_a_plain_list_as_it_is():
    addresses = [f"reader{n}@example{n % 7}.com" for n in range(50)]
    assert AddressChecker().normalise_plain(addresses) == addresses
    assert AddressChecker().normalise_plain([]) == []
    mixed = ["a@Example.com", "info@x.org", "b@x.org"]
    assert AddressChecker().normalise_plain(mixed) == ["a@example.com", None, "b@x.org"]


def tricky_row(pick: random.Random, header: list[str]) -> str:
    def cell(name: str) -> str:
        if name == "email":
            return tricky_address(pick) if pick.random() < 0.3 else f"r{pick.randrange(10**6)}@example.org"
        if name == "status":
            return pick.choice(["", "", "subscribed", " Unsubscribed ", "bounced", "complained", "unconfirmed", "gone"])
        if name == "tags":
            return pick.choice(["", "news", "members;news", " a ; ;b", '"x,y"'])
        if name == "name":
            return pick.choice(["", "Jane Doe", "  Ann  ", "O'Brien", "'=1+2", '"Doe, Jane"', "Zoë Ä"])
        if name == "first_name":
            return pick.choice(["", "Jane", "Mary Ann"])
        return pick.choice(["", "Ghent", "'@handle", "a;b", "Company 5"])

    roll = pick.random()
    if roll < 0.02:
        return ""
    if roll < 0.03:
        return ",,,"
    if roll < 0.04:
        return ",".join([" "] * len(header))  # blank values, as wide as the header
    if roll < 0.06:
        return ",".join(cell(name) for name in header[:-1])  # a short row
    if roll < 0.08:
        return ",".join(cell(name) for name in header) + ",extra"
    if roll < 0.09:
        return ",".join(cell(name) for name in header) + ",,"  # trailing empty values
    if roll < 0.1:
        return f'"{cell("email")}'  # an unclosed quote
    if roll < 0.11:
        return f'{cell("email")},"two\nlines"'
    if roll < 0.12:
        return f"{cell('email')},a\rb"
    return ",".join(cell(name) for name in header)


@pytest.mark.parametrize("seed", range(12))
def test_a_chunk_read_column_by_column_is_what_row_by_row_reads(tmp_path: Path, seed: int):
    pick = random.Random(seed)
    header = pick.choice(
        [
            ["email", "name", "first_name", "status", "tags", "city"],
            ["email", "name", "tags", "company", "city"],
            ["Name", "EMAIL", "Status"],
            ["email"],
        ]
    )
    path = tmp_path / "list.csv"
    rows = [tricky_row(pick, header) for _ in range(300)]
    if seed % 3 == 0:  # mostly clean chunks too, where the column path does the work
        rows = [row for row in rows if "\n" not in row and '"' not in row and "\r" not in row and "," in row]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8", newline="")
    for wanted in (("subscribed",), STATUSES):
        with open_csv(path) as stream:
            csv_file = CsvFile(path, stream)
            reader = RowReader(Columns(csv_file), AddressChecker(), wanted)
            for chunk in csv_file.chunks(pick.choice([1, 7, 50, 500])):
                assert reader.read_chunk(chunk) == [reader.read(*row) for row in chunk.each()]


def rows_one_at_a_time(path: Path) -> list[tuple[int, list[str], int, str]]:
    """(line, values, end, problem) of every row after the header, as one CSV reader reads them row by row."""
    with open(path, encoding="utf-8-sig", newline="\n") as handle:
        reader = csv.reader(handle, delimiter=",")
        next(reader)
        found, start = [], reader.line_num + 1
        while True:
            try:
                values, problem = next(reader), ""
            except StopIteration:
                return found
            except csv.Error as exc:
                values, problem = [], _unreadable(exc)
            found.append((start, values, reader.line_num, problem))
            start = reader.line_num + 1


@pytest.mark.parametrize("seed", range(12))
def test_a_csv_read_in_chunks_has_the_rows_lines_and_problems_of_one_read_row_by_row(tmp_path: Path, seed: int):
    pick = random.Random(seed)
    header = ["email", "name", "first_name", "status", "tags", "city"]
    rows = [tricky_row(pick, header) for _ in range(400)]
    if seed % 4 == 0:  # no quote: each block of lines read at once
        rows = [row for row in rows if '"' not in row and "\r" not in row]
    elif seed % 2:  # a quoted value over many lines, across chunks
        rows.insert(pick.randrange(len(rows)), 'a@x.org,"' + "\n".join(["x"] * 60) + '"')
    ending = "\r\n" if seed % 3 == 0 else "\n"
    path = tmp_path / "list.csv"
    path.write_text(",".join(header) + ending + ending.join(rows) + ending, encoding="utf-8", newline="")
    with open_csv(path) as stream:
        chunks = list(CsvFile(path, stream).chunks(pick.choice([1, 7, 50, 500])))
    assert [row for chunk in chunks for row in chunk.each()] == rows_one_at_a_time(path)
    assert any(chunk.plain for chunk in chunks) or seed % 4
    for chunk in chunks:
        assert not chunk.plain or (list(chunk.lines) == list(chunk.ends) and not any(chunk.problems))


@pytest.mark.parametrize("seed", range(6))
def test_a_chunk_is_staged_column_by_column_as_row_by_row(tmp_path: Path, seed: int):
    pick = random.Random(seed)
    header = pick.choice([["email", "name", "first_name", "status", "tags", "city"], ["email", "city", "City"]])
    rows = [tricky_row(pick, header) for _ in range(300)]
    rows = [row for row in rows if row.count(",") == len(header) - 1 and not {'"', "\r", "'"} & set(row)]
    path = tmp_path / "list.csv"
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8", newline="")
    by_columns: list[RowProblem] = []
    by_rows: list[RowProblem] = []
    chunks = list(list_column_chunks(path, AddressChecker(), wanted=STATUSES))
    assert any(isinstance(chunk, ChunkColumns) for chunk in chunks)

    def staged(chunks: list, problems: list[RowProblem]) -> list[tuple]:
        tagsets = TagSets()
        rows = [row for chunk in staged_chunks(chunks, problems.append, tagsets) for row in chunk]
        tags = {number: tags for tags, number in tagsets.numbers.items()}  # (the numbers may differ)
        return [(*row[:5], tags.get(row[5]), *row[6:]) for row in rows]

    rows_chunks = [chunk.as_rows() if isinstance(chunk, ChunkColumns) else chunk for chunk in chunks]
    assert staged(chunks, by_columns) == staged(rows_chunks, by_rows)
    assert by_columns == by_rows
    assert by_columns  # rows the columns leave to the row reader


def test_journal_rows_hold_the_json_of_name_first_name_tags_and_fields():
    people = [
        Subscriber("a@x.org", 'Zoë "Z" \\ Ä', "Zoë", ("news", "ünï"), {"city": "Gent\n", "€": ""}, 2),
        Subscriber("b@x.org", "", "", (), {}, 3),
        Subscriber("c@x.org", "\x00\t", "x", ("news", "ünï"), {"a": "1", "b": "'=2"}, 4),
    ]
    rows = [row for chunk in journal_chunks([people[:2], people[2:]]) for row in chunk]
    expected = [
        (
            p.email,
            p.line,
            json.dumps([p.name, p.first_name, p.tags, p.fields], ensure_ascii=False, separators=(",", ":")),
        )
        for p in people
    ]
    assert rows == expected


@pytest.mark.parametrize("header", [["email", "name", "first_name", "tags", "city", "zip"], ["email", "c", "C", "c"]])
def test_journal_rows_of_a_chunks_columns_are_those_of_its_subscribers(tmp_path: Path, header: list[str]):
    pick = random.Random(7)
    rows = [tricky_row(pick, header) for _ in range(300)]
    rows = [row for row in rows if row.count(",") == len(header) - 1 and not {'"', "\r", "'"} & set(row)]
    path = tmp_path / "list.csv"
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8", newline="")
    columns = [
        chunk.subscribers for chunk in list_column_chunks(path, AddressChecker()) if isinstance(chunk, ChunkColumns)
    ]
    assert columns
    for chunk in columns:
        chunk = chunk._replace(emails=[email or "" for email in chunk.emails])
        assert list(journal_chunks([chunk])) == list(journal_chunks([chunk.subscribers()]))

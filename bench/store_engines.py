"""Benchmark: the subscriber store on SQLite and on PostgreSQL, side by side in one run.

Imports a generated CSV into an empty store, imports it again (every row present), records one-click
unsubscribes one at a time (each its own write transaction, as serve does), then loads the store's
subscribed readers into a send's (SQLite) journal as ``broadsheet send`` does: from SQLite in one SQL
statement with the store attached, from PostgreSQL streamed from a server-side cursor. PostgreSQL is a local server
started as the test suite starts it (tests/support/postgres.py: Debian's binaries, fsync off, so it shows
the engine's own cost, not a disk's). Wall time and this process's CPU time; the server's CPU is not
counted, so compare PostgreSQL's wall time.

    .venv/bin/python bench/store_engines.py [--rows 200000] [--clicks 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from compose import machine  # bench/compose.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import postgres

from broadsheet.data.db.postgres import close_pools
from broadsheet.data.store import Store, store_path
from broadsheet.data.store.importer import import_csv
from broadsheet.data.store.postgres_list import PostgresStoreList
from broadsheet.data.store.recipients import StoreList
from broadsheet.usecases.campaign import Journal, prepare_campaign


def write_list(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("email,name,status,tags,company\n")
        for i in range(rows):
            n = (i * 7_919) % rows  # addresses in no particular order, as real lists are
            status = "unsubscribed" if i % 50 == 0 else ""
            handle.write(f"reader{n:07d}@example{n % 500}.com,Reader {n},{status},members;news,Company {n % 977}\n")


def timed(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(location: Path | str, listing: Path, rows: int, clicks: int) -> list[tuple[str, int, float, float]]:
    figures = []
    with Store(location) as store:
        for label in ("import, empty store", "import again, all present"):
            wall, cpu = timed(lambda: import_csv(store, listing))
            figures.append((label, rows, wall, cpu))

        def one_clicks() -> None:
            for n in range(clicks):
                store.set_status(f"reader{n:07d}@example{n % 500}.com", "unsubscribed", source="one-click")

        wall, cpu = timed(one_clicks)
        figures.append(("one-click unsubscribes, one at a time", clicks, wall, cpu))
        subscribed = store.count("subscribed")
    root = Path(tempfile.mkdtemp(prefix="broadsheet-bench-journal-"))
    recipients = PostgresStoreList(location) if isinstance(location, str) else StoreList(location.parent.parent)
    with Journal.for_project(root) as journal:
        load = lambda: prepare_campaign(  # noqa: E731
            journal, slug="x", transport="outbox", issue_dir="i", fingerprint="f", subscribers=recipients
        )
        wall, cpu = timed(load)
    figures.append(("send: its recipients into the journal", subscribed, wall, cpu))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--clicks", type=int, default=2_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    folder = Path(tempfile.mkdtemp(prefix="broadsheet-bench-"))
    listing = folder / "list.csv"
    write_list(listing, args.rows)
    server = postgres.start()
    os.environ["BROADSHEET_DATABASE_PASSWORD"] = postgres.PASSWORD
    try:
        database = server.create_database()
        results = {
            "SQLite": run(store_path(folder), listing, args.rows, args.clicks),
            "PostgreSQL": run(server.url(database), listing, args.rows, args.clicks),
        }
        close_pools()
    finally:
        server.stop()
    print("| engine | run | rows | time | rows/s | CPU (this process) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for engine, figures in results.items():
        for label, count, wall, cpu in figures:
            print(f"| {engine} | {label} | {count:,} | {wall:.2f} s | {count / wall:,.0f} | {cpu:.2f} s |")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Build the journal and store fixtures (``journal-v4.db``, ``store-v2.db``) with a broadsheet of today.

Run with an older checkout's code on the path (``PYTHONPATH=<old>/src python tests/data/make_old_databases.py``):
the files record what that version wrote, so that tests/test_db.py can check the current code migrates them.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"
HERE = Path(__file__).resolve().parent


def main() -> None:
    from broadsheet.data.store import Store

    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("broadsheet.toml", "subscribers.example.csv"):
            shutil.copy(ROOT / name, project / name)
        for name in ("templates", "assets"):
            shutil.copytree(ROOT / name, project / name)
        shutil.copytree(SAMPLE, project / "issues" / SAMPLE.name)
        command = [sys.executable, "-m", "broadsheet", "send", SAMPLE.name, "--transport", "outbox", "--yes"]
        subprocess.run(command, cwd=project, check=True)
        with Store(project / "store.db") as store:
            store.add("ann@example.org", name="Ann Example", fields={"city": "Leuven"}, tags=["news", "art"])
            store.add("bob@example.com", name="Bob", tags=["news"])
            store.add("cy@example.net")
            store.set_status("bob@example.com", "unsubscribed", source="one-click", campaign="2021-06-01")
            store.set_status("cy@example.net", "bounced", source="webhook:postmark", dedupe_key="pm-1")
            store.take_sign_up("dee@example.org", name="Dee", source="form", limit=100)
            store.sign_up("eve@example.org", name="Eve", source="form")
        for source, target in (
            (project / ".broadsheet" / "state.db", "journal-v4.db"),
            (project / "store.db", "store-v2.db"),
        ):
            _compact(source, HERE / target)


def _compact(source: Path, target: Path) -> None:
    """One self-contained file (the WAL folded in), vacuumed small."""
    target.unlink(missing_ok=True)
    db = sqlite3.connect(source)
    db.execute(f"VACUUM INTO '{target}'")
    db.close()
    copy = sqlite3.connect(target)
    copy.execute("PRAGMA journal_mode=DELETE")
    copy.close()


if __name__ == "__main__":
    main()

"""Shared test set-up. Area fixtures live in tests/support/<area>.py or in the test modules."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_ISSUE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"


# Compiled modules are kept in __pycache__ (git-ignored) even where PYTHONDONTWRITEBYTECODE is set: otherwise each
# xdist worker rewrites every test module's asserts and compiles src/ again, and so does each CLI a test starts.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

MEMORY = Path("/dev/shm")  # noqa: S108 -- Linux's tmpfs: a folder in memory, not a temporary file


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders in memory (tmpfs) when the machine has one and no TMPDIR or --basetemp was given:
    the tests write, fsync and remove many small files (projects, journals, stores), which on a shared disk
    costs more than the work under test. The processes the tests start inherit it."""
    import tempfile

    if config.option.basetemp or "TMPDIR" in os.environ or hasattr(config, "workerinput"):
        return
    if MEMORY.is_dir() and os.access(MEMORY, os.W_OK | os.X_OK):
        os.environ["TMPDIR"] = str(MEMORY)
        tempfile.tempdir = None  # read TMPDIR again


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test in a browser is slow by nature: marked ``slow`` too. The slow tests run first (otherwise in
    their order): xdist hands them out while every worker is free, and the quick ones fill in around them
    instead of one worker finishing a long test alone at the end."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# Modules whose module-scoped fixture costs more than their tests (a serve process, an IMAP or HTTPS server, a
# wheel, RSA keys): under xdist each module's tests share one worker, so the fixture is made once, not once per
# worker. xdist's own loadgroup cannot do this with pytest 9 (it renames nodes through an attribute pytest no
# longer reads).
SHARED_MODULE_FIXTURE = frozenset(
    f"tests/test_{name}.py"
    for name in ("wheel", "serve", "serve_topics", "events_serve", "events_inbox", "events_webhooks", "doctor")
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With ``-n`` (xdist's default ``--dist load``): every test is its own unit of work, handed to whichever
    worker is free, except that the tests of a SHARED_MODULE_FIXTURE module go together."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SHARED_MODULE_FIXTURE else nodeid

    return Scheduling(config, log)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def _close_browser() -> Iterator[None]:
    """Quit the browser tests' shared Chromium, if one was started, when the session ends."""
    yield
    from support.browser import close_browser

    close_browser()


@pytest.fixture(autouse=True)
def _release_ports() -> Iterator[None]:
    """Close the ports ``support.ports.free_port`` still holds once a test ends."""
    yield
    from support.ports import release

    release()


def copy_sample_project(folder: Path) -> Path:
    """Copy the sample project (config, templates, sample issue, subscribers) into ``folder``."""
    import shutil

    for name in ("broadsheet.toml", "subscribers.example.csv"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copytree(ROOT / "assets", folder / "assets")
    if SAMPLE_ISSUE.exists():
        shutil.copytree(SAMPLE_ISSUE, folder / "issues" / SAMPLE_ISSUE.name)
    return folder


@pytest.fixture
def project(tmp_path: Path, sample_image_cache: Path) -> Path:
    """A temporary copy of the sample project (config, templates, sample issue, subscribers), its images
    already optimised as after a first build (tests of the optimising itself use ``cold_project``)."""
    import shutil

    from broadsheet.core.content.optimise import CACHE_FOLDER

    root = copy_sample_project(tmp_path)
    shutil.copytree(sample_image_cache, root / CACHE_FOLDER)
    return root


@pytest.fixture
def cold_project(tmp_path: Path) -> Path:
    """A temporary copy of the sample project as it is checked in: no image optimised yet."""
    return copy_sample_project(tmp_path)


@pytest.fixture(scope="session")
def sample_image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample issue's optimised images, made once a session: a project that copies them builds without
    re-encoding them (most of a first build's CPU)."""
    from broadsheet.core.config import load_config
    from broadsheet.core.content.optimise import CACHE_FOLDER
    from broadsheet.core.render import read_and_build

    root = copy_sample_project(tmp_path_factory.mktemp("sample-images"))
    read_and_build(root / "issues" / SAMPLE_ISSUE.name, load_config(root / "broadsheet.toml"))
    return root / CACHE_FOLDER


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One real PostgreSQL for the session (tests/support/postgres.py), stopped at its end."""
    from support.postgres import start

    server = start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database of the session's server, its password in BROADSHEET_DATABASE_PASSWORD."""
    from support.postgres import PASSWORD, fresh_database

    server = request.getfixturevalue("postgres_server")
    monkeypatch.setenv("BROADSHEET_DATABASE_PASSWORD", PASSWORD)
    yield from fresh_database(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs on both engines of the subscriber store."""
    return str(request.param)


@pytest.fixture
def store_location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where a test's subscriber store lives: the project's SQLite file, or a fresh PostgreSQL database."""
    if engine == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    from broadsheet.data.store import store_path

    return store_path(tmp_path)


@pytest.fixture
def open_journal(engine: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Opens the send journal of a project in ``tmp_path`` on the engine under test (``Journal``'s options):
    the SQLite file, or a fresh PostgreSQL database (``[database] url``)."""
    from broadsheet.data.journal.journal import Journal, journal_path

    if engine == "sqlite":
        return lambda **options: Journal.for_project(tmp_path, **options)
    url = str(request.getfixturevalue("postgres_url"))
    from broadsheet.data.journal.postgres import PostgresJournal

    return lambda **options: PostgresJournal(url, journal_path(tmp_path), **options)

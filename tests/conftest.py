"""Shared test set-up. Area fixtures live in tests/support/<area>.py or in the test modules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_ISSUE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test in a browser is slow by nature: marked ``slow`` too."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary copy of the sample project (config, templates, sample issue, subscribers)."""
    import shutil

    for name in ("broadsheet.toml", "subscribers.example.csv"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copytree(ROOT / "assets", tmp_path / "assets")
    if SAMPLE_ISSUE.exists():
        shutil.copytree(SAMPLE_ISSUE, tmp_path / "issues" / SAMPLE_ISSUE.name)
    return tmp_path

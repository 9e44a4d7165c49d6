"""The suite's own settings: a hung test fails with its name instead of stalling the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_hung_test_fails_with_its_name_and_the_run_goes_on(pytestconfig: pytest.Config, tmp_path: Path):
    assert float(pytestconfig.getini("timeout") or 0) > 0, "pyproject.toml gives every test a deadline"
    (tmp_path / "test_hangs.py").write_text(
        "import threading\n\n"
        "def test_waits_for_ever():\n    threading.Event().wait()\n\n"
        "def test_after_it():\n    pass\n",
        encoding="utf-8",
    )
    settings = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", ".", "-o", "timeout=1"]  # the suite's, 1 s
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *settings, "-p", "no:cacheprovider", "-q", "test_hangs.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED test_hangs.py::test_waits_for_ever - Failed: Timeout")
    assert "1 failed, 1 passed" in done.stdout

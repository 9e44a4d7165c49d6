"""The built wheel carries everything a project needs: installed into a fresh venv, ``broadsheet init``,
``build`` and ``send --test`` to the outbox work from it alone, outside this checkout.

The wheel is built from a copy of the sources with ``pip wheel --no-deps --no-build-isolation``
(setuptools comes with the test extra, so nothing is fetched) and installed by this venv's pip (``--python``) with
``--no-deps --no-index`` into a fresh venv made without pip of its own. broadsheet's dependencies come from this test venv: a ``.pth`` line puts its
site-packages on the new venv's path *after* the new venv's own, and site does not read the ``.pth`` files
of a folder named that way, so the checkout's editable broadsheet cannot be imported there: what runs is
the wheel. This keeps the test offline and quick (no second download of lxml, cryptography, …).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
THEME = ROOT / "templates" / "default"


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a clean copy of the sources (links kept as links, as a git checkout has them)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "templates", source / "templates", symlinks=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    assert (source / "src" / "broadsheet" / "core" / "themes" / "default").is_symlink()
    wheels = tmp_path / "wheels"
    pip = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index")
    run(*pip, "--wheel-dir", wheels, source, cwd=tmp_path)
    [built] = wheels.glob("broadsheet-*.whl")
    return built


def test_the_wheel_holds_the_theme_as_files(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        for path in THEME.rglob("*"):
            if path.is_file():
                name = f"broadsheet/core/themes/default/{path.relative_to(THEME).as_posix()}"
                info = archive.getinfo(name)  # KeyError: the file is missing
                assert (info.external_attr >> 16) & 0o170000 != 0o120000, f"{name} is a link"
                assert archive.read(name) == path.read_bytes(), name


def test_a_project_from_the_installed_wheel_builds_and_sends_a_test_copy(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)  # this venv's pip installs into it
    python = venv / "bin" / "python"
    purelib = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    install = ("install", "--quiet", "--no-deps", "--no-index")
    run(sys.executable, "-m", "pip", "--python", python, *install, wheel, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BROADSHEET_SECRET", "BROADSHEET_DEBUG")}
    where = run(python, "-c", "import broadsheet; print(broadsheet.__file__)", cwd=tmp_path, env=env).stdout
    assert Path(where.strip()).is_relative_to(purelib), where  # the wheel's, not the checkout's

    broadsheet = venv / "bin" / "broadsheet"
    made = run(broadsheet, "init", "news", "--name", "Wheel News", "--from", "news@example.org", cwd=tmp_path, env=env)
    assert "created broadsheet.toml" in made.stdout
    project = tmp_path / "news"
    [issue] = (project / "issues").iterdir()
    run(broadsheet, "build", issue.name, cwd=project, env=env)
    html = (project / "dist" / issue.name / "email.html").read_text(encoding="utf-8")
    assert "Wheel News" in html and "How an article is written" in html
    sent = run(broadsheet, "send", issue.name, "--test", "editor@example.net", cwd=project, env=env)
    assert "test copy to editor@example.net" in sent.stdout and ": sent" in sent.stdout
    [copy] = (project / "outbox" / issue.name / "test").glob("*.eml")
    assert b"Subject: [TEST] Wheel News: the first issue" in copy.read_bytes()

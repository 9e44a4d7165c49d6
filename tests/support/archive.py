"""Projects with many dated issues, for the web archive's tests and bench/publish.py."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"
SAMPLE_IMAGE = SAMPLE / "images" / "chengdu-flemish-brabant.png"
PARAGRAPH = ("Flemish Brabant harbours a unique concentration of knowledge institutions and innovative companies, "
             "with [a link](https://www.example.org/{n}) and **bold** words.\n\n")  # fmt: skip


def sample_project(root: Path) -> Path:
    """A copy of the sample project (config, theme, logo, the sample issue) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("templates", "assets"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "broadsheet.toml", root)
    shutil.copytree(SAMPLE, root / "issues" / SAMPLE.name)
    return root


def dated_issue(
    project: Path,
    number: int,
    date: dt.date,
    *,
    title: str = "",
    image: bool = True,
    draft: bool = False,
    articles: int = 2,
) -> Path:
    """issues/<date>-issue-<number>/ with ``articles`` articles; the first has a lead image when ``image``."""
    folder = project / "issues" / f"{date.isoformat()}-issue-{number}"
    (folder / "articles").mkdir(parents=True)
    title = title or f"Issue number {number}"
    front = (
        f'title: "{title}"\npreheader: "What happened in issue {number}"\ndate: {date.isoformat()}\nnumber: {number}\n'
    )
    (folder / "issue.md").write_text(f"---\n{front}{'draft: true' + chr(10) if draft else ''}---\nIntro of {number}.\n",
                                     encoding="utf-8")  # fmt: skip
    if image:
        (folder / "images").mkdir()
        shutil.copy(SAMPLE_IMAGE, folder / "images" / "lead.png")
    for n in range(articles):
        lead = "image: ../images/lead.png\nimage_alt: The lead picture\n" if image and n == 0 else ""
        body = PARAGRAPH.format(n=n) * 3 + ("![An inline picture](../images/lead.png)\n" if image and n == 1 else "")
        (folder / "articles" / f"{n + 1:02d}-article.md").write_text(
            f"---\ntitle: Article {n + 1} of issue {number}\nauthor: Ed\n{lead}---\n{body}", encoding="utf-8"
        )
    return folder


def many_issues(project: Path, count: int, *, start: dt.date = dt.date(2022, 1, 3)) -> list[Path]:
    """``count`` weekly issues from ``start`` on."""
    return [dated_issue(project, n + 1, start + dt.timedelta(weeks=n)) for n in range(count)]

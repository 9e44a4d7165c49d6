"""A small project whose issue uses every component (docs/writing-components.md), in either built-in theme."""

from __future__ import annotations

from pathlib import Path

from broadsheet.core.config import load_config
from broadsheet.core.content import Issue
from broadsheet.core.render import read_and_build
from broadsheet.core.render.model import RenderedIssue
from support.issues import write_image, write_issue

COMPONENTS = """---
title: Components
---
Join us in Brussels for the [anniversary](https://example.org/anniversary) dinner.

[Book your seat](https://example.org/book){.button}

[Read the programme](https://example.org/programme){.button .secondary}

::: callout
**Deadline:** registrations close on 1 July. [Details](https://example.org/details).
:::

::: figure
![Delegates in Chengdu](../images/left.png)
The delegation at the *Chengdu* trade fair.
:::

::: pair
![Left view](../images/left.png)
![Right view](../images/right.png)
:::
"""
ISSUE = (
    "---\ntitle: Components issue\npreheader: Every component in one issue\ndate: 2024-01-02\nnumber: 3\n"
    "id: 2024-01-02-1a2b3c4d\n---\n"
    + "An intro of some length, so that the issue reads as text with pictures. " * 6
    + "\n"
)


def components_project(root: Path, *, theme: str = "default", brand: str = "", body: str = COMPONENTS) -> Path:
    """``root`` as a project (``[theme] name = theme``, ``brand`` lines added to ``[brand]``); its issue's folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "broadsheet.toml").write_text(
        f'name = "Components Weekly"\nfrom = "news@example.org"\nunsubscribe_mailto = "u@example.org"\n'
        f'base_url = "https://news.example.org"\n'
        f'[theme]\nname = "{theme}"\n[brand]\n{brand}\n[footer]\npostal_address = "1 Main Street, Leuven"\n',
        encoding="utf-8",
    )
    folder = write_issue(root, issue=ISSUE, articles={"01-components.md": body})
    write_image(folder / "images" / "left.png", (600, 400))
    write_image(folder / "images" / "right.png", (600, 400))
    return folder


def build_components(root: Path, **options: str) -> tuple[Issue, RenderedIssue]:
    folder = components_project(root, **options)
    return read_and_build(folder, load_config(root / "broadsheet.toml"))

"""Write the CSS support table lint ships, from the caniemail data set (npm `caniemail`, MIT licence).

Keeps, for each CSS feature, the latest verdict of the three clients lint names: Gmail (webmail), Outlook
for Windows and Apple Mail (macOS). Run `make caniemail` to refresh it from a newer release.

    .venv/bin/python scripts/caniemail_subset.py node_modules/caniemail/data/caniemail.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CLIENTS = {"Gmail": ("gmail", "desktop-webmail"), "Outlook for Windows": ("outlook", "windows"),
           "Apple Mail": ("apple-mail", "macos")}  # fmt: skip
OUT = Path(__file__).resolve().parents[1] / "src/broadsheet/core/lint/caniemail_css.json"


def latest(stats: dict[str, dict[str, dict[str, str]]], family: str, platform: str) -> str | None:
    """The verdict of the newest version tested: y (yes), a (partly), n (no), u (unknown); notes dropped."""
    versions = stats.get(family, {}).get(platform)
    if not versions:
        return None
    return list(versions.values())[-1].split(" ", 1)[0]


def main() -> None:
    source = Path(sys.argv[1])
    data = json.loads(source.read_text(encoding="utf-8"))
    package = json.loads((source.parent.parent / "package.json").read_text(encoding="utf-8"))
    features = {}
    for feature in data["data"]:
        if feature["category"] != "css":
            continue
        support = {name: latest(feature["stats"], *where) for name, where in CLIENTS.items()}
        if "n" in support.values():  # only what one of the three does not support is ever looked up
            features[feature["slug"]] = {"title": feature["title"], "url": feature["url"],
                                         "no": [name for name, verdict in support.items() if verdict == "n"]}  # fmt: skip
    table = {
        "source": f"caniemail {package['version']} (npm, MIT licence), data of {data['last_update_date']}",
        "licence": "MIT License. Copyright (c) Avi Goldman; Copyright (c) Andrew Powell. Data from caniemail.com.",
        "features": dict(sorted(features.items())),
    }
    OUT.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(features)} features")


if __name__ == "__main__":
    main()

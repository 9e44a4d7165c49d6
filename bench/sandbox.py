"""The cost of Jinja's sandbox on compose: the same Composer with plain and with sandboxed templates.

    .venv/bin/python bench/sandbox.py [--issue DIR] [--recipients 5000] [--rounds 10]

Interleaves the two (so that a busy machine slows both alike) and times each round in CPU time of
this process, not wall-clock time; prints the best rate of each and the change.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jinja2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import compose as bench

from broadsheet.core.compose import Composer


def unsandboxed(composer: Composer, issue) -> Composer:
    """``composer`` with its per-recipient templates compiled by a plain jinja2.Environment, as before."""
    for part, autoescape in (("html", True), ("text", False)):
        environment = jinja2.Environment(
            autoescape=autoescape,  # noqa: S701 -- the text part is plain text, as in compose
            keep_trailing_newline=True,
            cache_size=0,
        )
        setattr(composer.templates, part, environment.from_string(getattr(issue, part)))
    return composer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", type=Path, help="an issue folder to render instead of the synthetic issue")
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("BROADSHEET_SECRET", "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    issue = bench.real_issue(args.issue.resolve()) if args.issue else bench.synthetic_issue()
    people = bench.subscribers(args.recipients)
    composers = {
        "sandboxed": Composer(issue, bench.config()),
        "plain": unsandboxed(Composer(issue, bench.config()), issue),
    }
    assert composers["plain"].compose(people[0]).html == composers["sandboxed"].compose(people[0]).html
    best = dict.fromkeys(composers, 0.0)
    for round_ in range(args.rounds):
        for name in sorted(composers, reverse=round_ % 2 == 1):
            started = time.process_time()
            for person in people:
                composers[name].compose(person)
            best[name] = max(best[name], len(people) / (time.process_time() - started))
    print(f"machine: {bench.machine()}; {time.strftime('%Y-%m-%d')}; {args.issue or 'synthetic issue'}")
    print(
        f"plain {best['plain']:.0f} msg/s, sandboxed {best['sandboxed']:.0f} msg/s "
        f"({100 * (best['sandboxed'] / best['plain'] - 1):+.1f} %), best of {args.rounds} rounds of {len(people)}"
    )


if __name__ == "__main__":
    main()

"""A command loads only what it uses: heavy libraries wait for the command that needs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("premailer", "cssutils", "mjml", "rich", "requests")

PROBE = """
import json, sys
from broadsheet.faces.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def loaded_by(*argv: str) -> list[str]:
    """The heavy libraries a fresh interpreter holds after ``broadsheet ARGV``."""
    code = PROBE.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("command", ["status", "report", "send"])
def test_help_loads_no_renderer_terminal_ui_nor_http_client(command):
    assert loaded_by(command, "--help") == []


def test_the_renderer_loads_when_an_issue_is_built():
    code = (
        "import sys\n"
        "from broadsheet.core import render\n"
        "assert 'premailer' not in sys.modules\n"
        "render.build_issue\n"
        "from broadsheet.core.render.compile import inline_css\n"
        "inline_css('<html><head><style>p { color: red }</style></head><body><p>x</p></body></html>')\n"
        "print('premailer' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "True"

"""Tools the suite runs for real (npm mjml, headless Chromium): `make test` installs them, so a missing
one fails its tests; set BROADSHEET_TEST_SKIP_MISSING=1 to skip them instead on a machine without them."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, install: str) -> NoReturn:
    """Fail (or, when BROADSHEET_TEST_SKIP_MISSING=1, skip) the calling test: ``what`` is not installed."""
    reason = f"{what} not installed ({install})"
    if os.environ.get("BROADSHEET_TEST_SKIP_MISSING") == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason}; set BROADSHEET_TEST_SKIP_MISSING=1 to skip this test instead", pytrace=False)

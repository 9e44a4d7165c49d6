"""Where ``send`` gets the secret that signs unsubscribe links: BROADSHEET_SECRET, or for copies that
reach no reader (``send --test``, sends to the outbox) a throw-away one, said so on the terminal."""

from __future__ import annotations

import os
import secrets
import sys

from ..config import SECRET_ENV, Config
from ..errors import ConfigError

VARIABLE = SECRET_ENV["unsubscribe"]
MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def token_secret(config: Config, *, throwaway: bool) -> str | None:
    """None when the Composer reads BROADSHEET_SECRET itself (it is set, or no link needs it); a fresh
    throw-away secret when it is not set and ``throwaway``; else a ConfigError saying what it is for."""
    if "{token}" not in config.unsubscribe_url or os.environ.get(VARIABLE):
        return None
    if throwaway:
        print(
            f"{VARIABLE} is not set: the unsubscribe links of these copies are signed with a throw-away "
            "secret and will not work (fine for a test; a real send needs the secret)",
            file=sys.stderr,
        )
        return "throwaway-" + secrets.token_urlsafe(32)
    raise ConfigError(
        "not set: it signs each reader's unsubscribe link, so that no one can unsubscribe someone else",
        where=f"environment variable {VARIABLE}",
        fix=f"make one with {MAKE_ONE}, then export {VARIABLE}=<it> wherever you send from; keep it "
        "(links in issues already sent stop working when it changes)",
    )  # fmt: skip

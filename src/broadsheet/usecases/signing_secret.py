"""Where ``send`` gets the secret that signs unsubscribe links: BROADSHEET_SECRET, or for copies that
reach no reader (``send --test``, sends to the outbox) a throw-away one, said so through ``warn``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from broadsheet.core.config import MAKE_SIGNING_SECRET, SECRET_ENV, Config, check_signing_secret, weak_secret
from broadsheet.core.errors import ConfigError

VARIABLE = SECRET_ENV["unsubscribe"]


def token_secret(config: Config, *, throwaway: bool, warn: Callable[[str], None]) -> str | None:
    """None when the Composer reads BROADSHEET_SECRET itself (it is set and strong, or no link needs it);
    when ``throwaway``, a weak one as given (``make demo``'s) or a fresh throw-away one when it is not set;
    else a ConfigError saying what it is for, or why it is too weak."""
    given = os.environ.get(VARIABLE, "")
    if "{token}" not in config.unsubscribe_url or (given and weak_secret(given) is None):
        return None
    if throwaway and given:
        return given  # it signs copies that reach no reader
    if throwaway:
        warn(
            f"{VARIABLE} is not set: the unsubscribe links of these copies are signed with a throw-away "
            "secret and will not work (fine for a test; a real send needs the secret)"
        )
        return "throwaway-" + secrets.token_urlsafe(32)
    if given:
        check_signing_secret(VARIABLE, given)
    raise ConfigError(
        "not set: it signs each reader's unsubscribe link, so that no one can unsubscribe someone else",
        where=f"environment variable {VARIABLE}",
        fix=f"make one with {MAKE_SIGNING_SECRET}, then export {VARIABLE}=<it> wherever you send from; keep it "
        "(links in issues already sent stop working when it changes)",
    )  # fmt: skip

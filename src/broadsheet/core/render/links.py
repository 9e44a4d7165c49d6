"""Links every recipient's copy shares with the browser version: the mailto: unsubscribe link."""

from __future__ import annotations


def unsubscribe_mailto(address: str) -> str:
    """``mailto:<address>?subject=unsubscribe`` for ``[unsubscribe_mailto]``, or '' when it is unset.

    The value may be written with or without ``mailto:``; a value with its own ``?query`` keeps it.
    """
    address = address.strip().removeprefix("mailto:")
    if not address:
        return ""
    return f"mailto:{address}" if "?" in address else f"mailto:{address}?subject=unsubscribe"

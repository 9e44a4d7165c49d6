"""The ledger of a pass over a list lives with the other SQLite files (``broadsheet.db.ledger``)."""

from __future__ import annotations

from ..db.ledger import Ledger

__all__ = ["Ledger"]

"""Every SQLite database broadsheet opens, opened here: connections with the standard PRAGMAs (``connect``),
one migration runner for the journal and the store (``migrate``), WAL checkpoints in a thread of their own
(``checkpoint``) and the scratch ledger of a pass over a list (``ledger``)."""

from __future__ import annotations

from .connect import attached_uri, connect, use_wal
from .migrate import Schema, migrate

__all__ = ["Schema", "attached_uri", "connect", "migrate", "use_wal"]

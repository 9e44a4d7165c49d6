"""Everything SQLite: connections and migrations, the subscriber store, the send journal."""

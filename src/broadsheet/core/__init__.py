"""The core: config, content, render, compose, lint, audience rows, tokens; no SQLite, no provider calls."""

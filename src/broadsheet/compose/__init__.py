"""Compose: one subscriber + the rendered issue -> RFC 5322 bytes."""

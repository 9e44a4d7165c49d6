"""Talking to the outside: transports, provider webhook adapters, inbox readers, sync pulls."""

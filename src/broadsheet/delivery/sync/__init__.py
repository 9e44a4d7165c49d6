"""Pulling events from the providers' APIs."""

"""DNS look-ups for `broadsheet doctor`: a resolver over dnspython, SPF evaluation, DKIM and DMARC records."""

from .resolver import DnsError, Resolver

__all__ = ["DnsError", "Resolver"]

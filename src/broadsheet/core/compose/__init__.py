"""Compose: one subscriber + the rendered issue -> RFC 5322 bytes."""

from .composer import Composer
from .headers import RecipientRejected
from .message import Message
from .unsubscribe import unsubscribe_token, verify_unsubscribe_token

__all__ = ["Composer", "Message", "RecipientRejected", "unsubscribe_token", "verify_unsubscribe_token"]

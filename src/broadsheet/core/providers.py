"""Facts about each transport that other packages need without loading it (imports nothing).

Which class implements it, the environment variable of its credential, whether its sends reach
anyone (the outbox only writes files: it is neither counted, capped, nor a reason to skip a recipient
elsewhere), how many messages one request may carry, and who DKIM-signs what it sends (the API
providers build the message themselves and sign it; SMTP and SES carry our own bytes and signature).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    target: str  # "module:Class" inside broadsheet.delivery.transports
    secret_env: str | None  # the environment variable of its credential, if it has one
    delivers: bool  # its messages reach inboxes (False: the outbox)
    max_batch: int  # messages one send_batch call may carry
    keeps_signature: bool = True  # our raw message, with its [dkim] DKIM-Signature, is what arrives
    signs: bool = False  # the provider DKIM-signs every message itself (for the domain verified with it)
    signing_domain_key: str = ""  # the config key naming the domain the provider signs for, when one does
    spf_include: str = ""  # what an SPF record includes to let the provider's hosts send


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("outbox", "outbox:OutboxTransport", None, delivers=False, max_batch=100),
        Provider("smtp", "smtp:SmtpTransport", "BROADSHEET_SMTP_PASSWORD", delivers=True, max_batch=1),
        Provider(
            "postmark",
            "postmark:PostmarkTransport",
            "BROADSHEET_POSTMARK_TOKEN",
            delivers=True,
            max_batch=500,
            keeps_signature=False,
            signs=True,
            spf_include="spf.mtasv.net",
        ),
        Provider(
            "sendgrid",
            "sendgrid:SendgridTransport",
            "BROADSHEET_SENDGRID_KEY",
            delivers=True,
            max_batch=1000,
            keeps_signature=False,
            signs=True,
            spf_include="sendgrid.net",
        ),
        Provider(
            "mailgun",
            "mailgun:MailgunTransport",
            "BROADSHEET_MAILGUN_KEY",
            delivers=True,
            max_batch=1000,
            keeps_signature=False,
            signs=True,
            signing_domain_key="mailgun.domain",
            spf_include="mailgun.org",
        ),
        Provider(
            "ses",
            "ses:SesTransport",
            "AWS_SECRET_ACCESS_KEY",
            delivers=True,
            max_batch=1,
            signs=True,
            spf_include="amazonses.com",
        ),
        Provider(
            "resend",
            "resend:ResendTransport",
            "BROADSHEET_RESEND_KEY",
            delivers=True,
            max_batch=100,
            keeps_signature=False,
            signs=True,
            spf_include="amazonses.com",
        ),
    )
}

NOT_DELIVERING: tuple[str, ...] = tuple(name for name, p in PROVIDERS.items() if not p.delivers)


def delivers(transport: str) -> bool:
    """True when a send over ``transport`` reaches people (unknown names are assumed to)."""
    provider = PROVIDERS.get(transport)
    return provider is None or provider.delivers


def not_delivering_sql(column: str) -> str:
    """An SQL condition true for rows whose ``column`` names a transport that delivers."""
    names = ", ".join(f"'{name}'" for name in NOT_DELIVERING)
    return f"{column} NOT IN ({names})"


def secret_variables() -> dict[str, str]:
    """transport name -> the environment variable of its credential."""
    return {name: p.secret_env for name, p in PROVIDERS.items() if p.secret_env}

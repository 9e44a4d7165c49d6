"""The last campaigns' hard-bounce and complaint rates against the lines mailbox providers draw: Gmail and
Yahoo want complaints under 0.1 % and act at 0.3 %; providers review accounts at about 5 % hard bounces."""

from __future__ import annotations

from broadsheet.core.config import Config
from broadsheet.data.journal.engines import journal_exists, open_journal_for
from broadsheet.data.store import Store
from broadsheet.usecases.events.report import BOUNCE_LIMIT, COMPLAINT_LIMIT, AfterSend

from .checks import Check, Status

COMPLAINT_FAIL = 0.003  # Gmail's and Yahoo's hard line
BOUNCE_FAIL = 0.05


def rate_checks(config: Config, campaigns: int) -> list[Check]:
    """One check per campaign of the last ``campaigns`` over a real transport (sent counted by the journal,
    bounces and complaints by the subscriber store's events)."""
    if not journal_exists(config):
        return [Check("rates", "ok", "no campaign has been sent yet: nothing to measure")]
    with open_journal_for(config, read_only=True) as journal:
        recent = [(c, journal.counts(c)["sent"]) for c in journal.recent_campaigns(campaigns)]
    recent = [(campaign, sent) for campaign, sent in recent if sent]
    if not recent:
        return [Check("rates", "ok", "no campaign has been sent yet: nothing to measure")]
    if not Store.exists_for_config(config):
        return [
            Check(
                "rates",
                "warn",
                "no subscriber store: bounces and complaints are not recorded, so not measured",
                fix="let webhooks, broadsheet inbox or broadsheet sync record them (broadsheet serve)",
            )
        ]
    with Store.for_config(config) as store:
        return [
            _rates(campaign.slug, AfterSend.from_counts(sent, store.campaign_counts(campaign.slug)))
            for campaign, sent in recent
        ]


def _rates(slug: str, after: AfterSend) -> Check:
    complaints, hard = after.complained / after.sent, after.hard / after.sent
    what = f"{slug}: {after.sent:,} sent, hard bounces {hard:.2%}, complaints {complaints:.2%}"
    status: Status = "ok"
    fix = ""
    if complaints > COMPLAINT_FAIL or hard > BOUNCE_FAIL:
        status = "fail"
    elif complaints > COMPLAINT_LIMIT or hard > BOUNCE_LIMIT:
        status = "warn"
    if complaints > COMPLAINT_LIMIT:
        what += f" (over {COMPLAINT_LIMIT:.1%}; providers block senders at {COMPLAINT_FAIL:.1%})"
        fix = "mail only people who asked, make leaving easy (one-click), confirm sign-ups"
    if hard > BOUNCE_LIMIT:
        what += f" (hard bounces over {BOUNCE_LIMIT:.0%})"
        fix = (fix + "; " if fix else "") + "clean the list: old or bought addresses bounce"
    return Check("rates", status, what, fix=fix)

"""broadsheet inbox: read bounces, complaint reports and unsubscribe mails from the IMAP mailbox in [inbox]."""

from __future__ import annotations

import argparse

from broadsheet.data.store import Store
from broadsheet.usecases.events.inbox import read_inbox

from . import Subparsers, project_config


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "inbox", help="read bounces, complaints and unsubscribe requests from the IMAP mailbox into the store",
        description="Reads every message in [inbox] folder over IMAP (TLS verified, password from "
        "BROADSHEET_INBOX_PASSWORD): delivery status notifications, ARF complaint reports and mailto: "
        "unsubscribe requests are recorded once in the subscriber store and moved to [inbox] processed_folder; "
        "anything else is left where it is and counted, and so are reports that may be forged: with "
        "[smtp] return_path, bounces without a valid token; complaint reports from senders not in "
        "[inbox] feedback_senders; complaints and unsubscribe mails whose From the Authentication-Results "
        "of [inbox] authserv_id does not show authenticated.",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    with Store.for_config(config) as store:
        result = read_inbox(config, store)
    refused = result.refused.total()
    print(
        f"{config.inbox.host}: read {result.read:,} message(s): {result.processed:,} processed and moved to "
        f"{config.inbox.processed_folder}, {result.unrecognised:,} not recognised and {refused:,} refused "
        f"(left in {config.inbox.folder})"
    )
    for reason, count in sorted(result.refused.items()):
        print(f"  refused {count:,}: {reason}")
    print(f"  {result.applied.summary()}")
    for email in result.applied.suppressed[:20]:
        print(f"  suppressed {email}")
    return 0

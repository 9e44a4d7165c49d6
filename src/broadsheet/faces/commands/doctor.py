"""``broadsheet doctor``: are SPF, DKIM, DMARC, the credentials, the secret, the one-click unsubscribe and the
last campaigns' rates what Gmail, Yahoo and Outlook.com require? One line per check.

Exit codes: 0 no check failed (warnings allowed); 1 a check failed; 2 bad input (an unknown transport or
check group, a malformed name server, an unreadable config), printed on one line by the CLI.
"""

from __future__ import annotations

import argparse
import json
import os

from broadsheet.core.errors import one_line
from broadsheet.usecases.doctor.checks import GROUPS, Check
from broadsheet.usecases.doctor.run import DoctorOptions, DoctorResult, run_doctor

from . import Subparsers, project_config

NAMESERVERS_ENV = "BROADSHEET_NAMESERVERS"  # comma-separated, as [doctor] nameservers


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "doctor", help="check SPF, DKIM, DMARC, credentials and one-click unsubscribe before sending",
        description="Check what mailbox providers require of a bulk sender: DKIM aligned with From, SPF, the DKIM "
        "key in the DNS, DMARC, the return path's MX, the transport's credentials (nothing is sent), "
        "BROADSHEET_SECRET, the one-click unsubscribe address, the last campaigns' bounce and complaint rates. "
        "Exit 1 when a check fails, 0 on warnings only.",
    )  # fmt: skip
    parser.add_argument("--transport", metavar="NAME", help="check for this transport (default: send.transport)")
    parser.add_argument(
        "--nameserver", action="append", default=[], metavar="IP[:PORT]",
        help=f"DNS server to ask (repeatable; default: ${NAMESERVERS_ENV}, [doctor] nameservers, the system's)",
    )  # fmt: skip
    parser.add_argument("--only", action="append", default=[], choices=GROUPS, help="run only this group (repeatable)")
    parser.add_argument("--skip", action="append", default=[], choices=GROUPS, help="leave out this group (repeatable)")
    parser.add_argument("--campaigns", type=int, default=3, metavar="N", help="rates of the last N campaigns (3)")
    parser.add_argument("--json", action="store_true", help="one JSON document, for CI")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    from_env = [part.strip() for part in os.environ.get(NAMESERVERS_ENV, "").split(",") if part.strip()]
    options = DoctorOptions(
        transport=args.transport, nameservers=tuple(args.nameserver or from_env), only=tuple(args.only),
        skip=tuple(args.skip), campaigns=max(1, args.campaigns),
    )  # fmt: skip
    result = run_doctor(options, config)
    if args.json:
        print(to_json(result))
    else:
        for check in result.checks:
            print(line(check))
        counts = result.counts()
        print(f"doctor ({result.transport}): {counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
    return 1 if result.failed else 0


def line(check: Check) -> str:
    """``fail  dmarc            no DMARC record … — fix: … — publish: _dmarc.example.org. TXT "…"``"""
    text = f"{check.status:<4}  {check.name:<16} {check.what}"
    if check.fix:
        text += f" — fix: {check.fix}"
    if check.record:
        text += f" — publish: {check.record}"
    return one_line(text)


def to_json(result: DoctorResult) -> str:
    return json.dumps(
        {"transport": result.transport, **result.counts(), "checks": [c.as_dict() for c in result.checks]},
        indent=2,
        ensure_ascii=False,
    )

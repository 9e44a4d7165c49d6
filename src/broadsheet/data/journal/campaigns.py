"""The journal's campaigns: one per issue identity and transport, found, created and adopted; the recent-send
check; and the sent-marks beside the journal that a lost journal cannot take with it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from broadsheet.core.errors import CampaignError
from broadsheet.core.providers import delivers, not_delivering_sql

from .base import CAMPAIGN_COLUMNS, CampaignRecord, JournalBase, RecentSend, explained
from .file import explain

RECENT_DAYS = 7  # a campaign mailing people who got the same subject this recently is refused


class Campaigns(JournalBase):
    """Campaigns of the journal and their sent-marks."""

    @explained
    def campaign(self, key: str, transport: str) -> CampaignRecord | None:
        row = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key = ? AND transport = ?", (key, transport)
        ).fetchone()
        return CampaignRecord(*row) if row else None

    @explained
    def campaigns_for(self, key: str, slug: str = "") -> list[CampaignRecord]:
        """Every campaign of this issue (all transports); ``slug`` also finds ones begun before it had an id."""
        rows = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key = ? OR (key = ? AND issue_id = '') ORDER BY id",
            (key, slug),
        ).fetchall()
        return [CampaignRecord(*row) for row in rows]

    def start_campaign(
        self,
        key: str,
        transport: str,
        issue_dir: str,
        fingerprint: str,
        *,
        slug: str = "",
        issue_id: str = "",
        subject: str = "",
    ) -> tuple[CampaignRecord, bool]:
        """The campaign for this issue and transport, created if new. True when its list must be (re)loaded.

        An issue given an id after a send began (its campaigns keyed by folder name) keeps those campaigns.
        The folder, slug and subject are updated to the current ones: they describe, the key identifies.
        """
        slug = slug or key
        with self._transaction():
            if issue_id:
                self._adopt(issue_id, slug)
            self.db.execute(
                "INSERT INTO campaigns (key, issue_id, slug, transport, issue_dir, subject, list_fingerprint, created)"
                " VALUES (?, ?, ?, ?, ?, ?, '', ?) ON CONFLICT (key, transport) DO UPDATE SET"
                " slug = excluded.slug, issue_dir = excluded.issue_dir, subject = excluded.subject",
                (key, issue_id, slug, transport, issue_dir, subject, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())),
            )
        record = self.current(key, transport)
        return record, record.list_fingerprint != fingerprint

    def _adopt(self, issue_id: str, slug: str) -> None:
        """Key the campaigns begun under the folder name ``slug`` (before the issue had an id) by the id."""
        self.db.execute(
            "UPDATE campaigns SET key = ?, issue_id = ? WHERE key = ? AND issue_id = ''"
            " AND transport NOT IN (SELECT transport FROM campaigns WHERE key = ?)",
            (issue_id, issue_id, slug, issue_id),
        )

    @explained
    def recent_same_subject(
        self, campaign: CampaignRecord, *, days: float = RECENT_DAYS, now: float | None = None
    ) -> list[RecentSend]:
        """Other issues' campaigns with this subject that sent to this campaign's due recipients lately.

        One indexed join per such campaign (recipients are looked up by (campaign, email)), so it stays
        cheap for a million recipients. Outbox campaigns neither count nor are checked: they mail no one.
        """
        wanted = _same_subject(campaign.subject)
        if not delivers(campaign.transport) or not wanted:
            return []
        since = (time.time() if now is None else now) - days * 86400
        found = []
        for row in self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key <> ? AND {not_delivering_sql('transport')} ORDER BY id",
            (campaign.key,),
        ).fetchall():
            other = CampaignRecord(*row)
            if _same_subject(other.subject) != wanted:
                continue
            count, last = self.db.execute(
                "SELECT count(*), max(theirs.updated) FROM recipients AS mine"
                " JOIN recipients AS theirs ON theirs.campaign = ? AND theirs.email = mine.email"
                " WHERE mine.campaign = ? AND mine.state IN ('queued', 'deferred')"
                " AND theirs.state = 'sent' AND theirs.updated >= ?",
                (other.id, campaign.id, since),
            ).fetchone()
            if count:
                found.append(RecentSend(other, count, last))
        return found

    def current(self, key: str, transport: str) -> CampaignRecord:
        record = self.campaign(key, transport)
        if record is None:
            raise CampaignError(f"no campaign for {key} over {transport}")
        return record

    # -- sent-marks: what a lost journal cannot take with it -------------------------------------

    def _mark_sent(self, campaign: CampaignRecord) -> None:
        """Before a campaign's first message leaves, note in ``sent/<key>.json`` beside the journal that this
        journal sent the issue over this transport (``lost_send`` reads it). Once per campaign and run."""
        if campaign.id in self._marked or not delivers(campaign.transport):
            return
        path = sent_mark_path(self.path, campaign.key)
        mark = read_sent_mark(path)
        transports = set(mark.get("transports", ())) if mark and mark.get("journal") == self.uid else set()
        if campaign.transport not in transports:
            since = mark.get("since") if mark and transports else None
            content = {
                "key": campaign.key,
                "journal": self.uid,
                "transports": sorted(transports | {campaign.transport}),
            }
            _write_whole(path, json.dumps({**content, "since": since or time.time()}).encode())
        self._marked.add(campaign.id)

    def lost_send(self, key: str, slug: str) -> None:
        """Raise CampaignError when a sent-mark says this issue was sent from a journal that is not this one, or
        that this journal no longer knows it (removed, replaced, restored from an older backup): a send would
        mail everyone again. ``send --resend-all`` does not ask."""
        path = sent_mark_path(self.path, key)
        mark = read_sent_mark(path)
        if mark is None:
            return
        known = any(delivers(c.transport) for c in self.campaigns_for(key, slug))
        if mark.get("journal") == self.uid and known:
            return
        over = ", ".join(str(name) for name in mark.get("transports", ())) or "a transport"
        since = mark.get("since")
        when = time.strftime(" on %Y-%m-%d", time.gmtime(since)) if isinstance(since, (int, float)) else ""
        raise CampaignError(
            f"this issue was sent over {over}{when}, but the send journal does not record it (removed, replaced "
            "or restored from an older backup): a send now would mail everyone again", where=str(path),
            fix=f"put back the {self.path.name} that sent it and run the same command to resume; "
            "to mail the whole list again anyway, add --resend-all",
        )  # fmt: skip


def sent_mark_path(path: Path, key: str) -> Path:
    """Where the sent-mark of campaign ``key`` is kept: ``sent/`` beside the journal (not ``state.db*``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:100]
    if name != key:  # two keys must not share a file
        name += "-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return path.parent / "sent" / f"{name}.json"


def read_sent_mark(path: Path) -> dict[str, Any] | None:
    """A sent-mark's content; None when there is none. One that cannot be read counts as a mark (of an
    unknown journal): it says no more than that the issue went."""
    try:
        mark = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all: a file beside it, flushed to disk, renamed over it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise explain(exc, path) from None


def _same_subject(subject: str) -> str:
    """Subjects compared without case and spacing differences."""
    return " ".join(subject.split()).casefold()

"""The latest backup attempt failed (a ticket), whatever the age of the last good one.

``backup_age`` only notices a day later that backups stopped; a failed attempt
(a full disk, a target that cannot be written, the database not answering, a
snapshot that failed its checks) is known the moment it happens, from its
``backup.failed`` journal event (``watch/backups.py``). A ticket, not a page:
users are not hurt by it and the last verified backup is still there; the
causes that do hurt users page through their own rules (``disk_full``,
``database_down``). The next successful backup resolves it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class BackupFailed(Rule):
    kind = "backup_failed"

    def __init__(self) -> None:
        self.name = "backup_failed"
        self.severity = "ticket"
        self.description = "the latest backup attempt failed"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls()]

    def evaluate(self, obs: Observations) -> Verdict:
        reason, at = obs.readings.backup_failed_reason, obs.readings.backup_failed_at
        if reason is None:
            return Verdict(False, "the latest backup attempt succeeded (or none was made)")
        when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "lately"
        return Verdict(
            active=True,
            summary=f"the latest backup attempt ({when}) failed: {reason}",
            details={"reason": reason, "failed_at": at},
        )

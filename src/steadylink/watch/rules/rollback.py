"""A release that reached users was rolled back automatically: someone should look.

The guard already protected users; the page says a bad release got out
(``release.rolled_back`` with ``automatic`` and ``reached_users``). The alert
stays active ``HOLD_SECONDS`` after the last such rollback, then resolves.
"""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind

HOLD_SECONDS = 600


@rule_kind
class RolledBack(Rule):
    kind = "release_rolled_back"

    def __init__(self) -> None:
        self.name = "release_rolled_back"
        self.severity = "page"
        self.clear_seconds = 0.0
        self.description = "an automatic rollback after a release reached users"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls()]

    def evaluate(self, obs: Observations) -> Verdict:
        recent = [r for r in obs.rollbacks if 0 <= obs.now_s - r.at_s < HOLD_SECONDS]
        if not recent:
            return Verdict(False, "no automatic rollback lately")
        last = recent[-1]
        return Verdict(
            active=True,
            summary=f"release {last.release} reached users and was rolled back: {last.reason}",
            details={"release": last.release, "reason": last.reason},
        )

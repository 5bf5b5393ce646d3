"""Alert rules: one module per rule kind, listed in one registry.

A rule is pure: ``evaluate(Observations) -> Verdict``, no I/O, no clock of its
own (the observations carry the time), so each is tested second by second with
synthetic series. ``watch/alerts.py`` turns verdicts into alert states and
``watch/watcher.py`` is the loop that feeds both.
"""

from steadylink.watch.rules import (  # noqa: F401  (each module registers its kind)
    backup,
    backup_failed,
    burn_rate,
    database,
    disk,
    error_ratio,
    front_door,
    latency,
    loop_lag,
    probe_failing,
    probes_stale,
    rollback,
)
from steadylink.watch.rules.base import (
    RULE_KINDS,
    Observations,
    ProbeStreak,
    RollbackSeen,
    Rule,
    Verdict,
    build_rules,
    rule_kind,
)

__all__ = [
    "RULE_KINDS",
    "Observations",
    "ProbeStreak",
    "RollbackSeen",
    "Rule",
    "Verdict",
    "build_rules",
    "rule_kind",
]

"""Alert state: pending → firing → resolved, one alert per rule at a time.

``AlertBook.step`` takes the verdict of every rule at one moment and returns
the ``Change``\\ s that moment brings; it does no I/O and reads no clock, so
each transition is tested second by second. The watcher records every change
in the journal, saves the book (``alert_store.py``, so a restarted guard
carries on with the same alerts) and hands notifications to ``notify``.

* An active rule opens an alert (``pending``); after ``for_seconds`` it fires.
* A firing alert is deduplicated: it is one alert (one ``alert_id``, one
  PagerDuty ``dedup_key``) until it resolves, told again every
  ``renotify_seconds`` until someone acknowledges it, and escalated once to
  the second set of channels when a page stays unacknowledged
  ``escalate_after_seconds``.
* A rule that is quiet for ``clear_seconds`` resolves its alert; a pending one
  that never fired just goes (``resolved`` with ``fired`` false, told nobody).
* A silenced rule's alerts change state as usual but notify nobody.

Times are wall-clock seconds; a clock that jumps back never makes a duration
negative (``_since``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from steadylink.errors import NotFound
from steadylink.watch.rules.base import Rule, Verdict

State = Literal["pending", "firing", "resolved"]
ChangeKind = Literal["pending", "firing", "resolved", "renotify", "escalated", "acknowledged", "silenced"]


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    severity: str
    state: State
    started_at: float
    summary: str
    value: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    notified_at: float | None = None
    escalated_at: float | None = None
    quiet_since: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        return f"steadylink/{self.alert_id}"

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["dedup_key"] = self.dedup_key
        return body


@dataclass(frozen=True)
class Silence:
    rule: str
    until: float
    reason: str
    by: str


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    alert: Alert
    silenced: bool = False
    by: str | None = None


@dataclass
class Timing:
    renotify_seconds: float = 600.0
    escalate_after_seconds: float = 900.0


class AlertBook:
    def __init__(
        self, timing: Timing, alerts: Iterable[Alert] = (), silences: Iterable[Silence] = ()
    ) -> None:
        self.timing = timing
        self.open: dict[str, Alert] = {a.rule: a for a in alerts if a.state != "resolved"}
        self.silences: dict[str, Silence] = {s.rule: s for s in silences}

    def is_silenced(self, rule: str, now: float) -> bool:
        silence = self.silences.get(rule)
        return silence is not None and now < silence.until

    def step(self, now: float, verdicts: Mapping[str, tuple[Rule, Verdict]]) -> list[Change]:
        changes: list[Change] = []
        for _name, (rule, verdict) in verdicts.items():
            changes += self._step_rule(now, rule, verdict)
        return [replace(c, silenced=self.is_silenced(c.alert.rule, now)) for c in changes]

    def _step_rule(self, now: float, rule: Rule, verdict: Verdict) -> list[Change]:
        alert = self.open.get(rule.name)
        if alert is None:
            if not verdict.active:
                return []
            alert = Alert(
                alert_id=f"{rule.name}-{int(now)}", rule=rule.name, severity=rule.severity,
                state="pending", started_at=now, summary=verdict.summary, value=verdict.value,
                details=dict(verdict.details),
            )  # fmt: skip
            self.open[rule.name] = alert
            changes = [Change("pending", alert)]
            return changes + self._maybe_fire(now, rule)
        if verdict.active:
            alert = replace(alert, summary=verdict.summary, value=verdict.value,
                            details=dict(verdict.details), quiet_since=None)  # fmt: skip
            self.open[rule.name] = alert
            if alert.state == "pending":
                return self._maybe_fire(now, rule)
            return self._follow_up(now, alert)
        quiet_since = alert.quiet_since if alert.quiet_since is not None else now
        alert = replace(alert, quiet_since=quiet_since)
        self.open[rule.name] = alert
        if alert.state == "pending" or _since(quiet_since, now) >= rule.clear_seconds:
            return [self._resolve(now, alert)]
        return []

    def _maybe_fire(self, now: float, rule: Rule) -> list[Change]:
        alert = self.open[rule.name]
        if _since(alert.started_at, now) < rule.for_seconds:
            return []
        alert = replace(alert, state="firing", fired_at=now, notified_at=now)
        self.open[rule.name] = alert
        return [Change("firing", alert)]

    def _follow_up(self, now: float, alert: Alert) -> list[Change]:
        if alert.acknowledged_by is not None:
            return []
        changes: list[Change] = []
        if (
            alert.severity == "page"
            and alert.escalated_at is None
            and alert.fired_at is not None
            and _since(alert.fired_at, now) >= self.timing.escalate_after_seconds
        ):
            alert = replace(alert, escalated_at=now)
            changes.append(Change("escalated", alert))
        if _since(alert.notified_at or alert.started_at, now) >= self.timing.renotify_seconds:
            alert = replace(alert, notified_at=now)
            changes.append(Change("renotify", alert))
        self.open[alert.rule] = alert
        return changes

    def _resolve(self, now: float, alert: Alert) -> Change:
        del self.open[alert.rule]
        return Change("resolved", replace(alert, state="resolved", resolved_at=now))

    # people ------------------------------------------------------------------

    def acknowledge(self, alert_id_or_rule: str, *, by: str, now: float) -> Change:
        for rule, alert in self.open.items():
            if alert_id_or_rule in (alert.alert_id, rule):
                alert = replace(alert, acknowledged_by=by, acknowledged_at=now)
                self.open[rule] = alert
                return Change("acknowledged", alert, by=by)
        raise NotFound(f"No open alert {alert_id_or_rule!r}; see `steadylink alerts`.", field="alert")

    def silence(self, rule: Rule, *, until: float, reason: str, by: str, now: float) -> Change:
        self.silences[rule.name] = Silence(rule.name, until, reason, by)
        alert = self.open.get(rule.name) or Alert(
            alert_id=f"{rule.name}-silence-{int(now)}", rule=rule.name, severity=rule.severity,
            state="resolved", started_at=now, summary=f"silenced: {reason}",
        )  # fmt: skip
        return Change("silenced", alert, silenced=True, by=by)


def _since(then: float, now: float) -> float:
    return max(0.0, now - then)

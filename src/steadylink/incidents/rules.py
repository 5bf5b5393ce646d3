"""When the guard opens an incident: a pure decision over journal events.

Users were hurt, or are about to be, when

- an alert fires with severity ``page``;
- a release is rolled back by its canary or bake *after it reached users*
  (``release.rolled_back`` with ``reached_users``);
- an alert fires (any severity) within ``unguarded_window`` of a
  ``deploy --no-canary`` (seen as ``deploy.started`` with ``no_canary`` or a
  ``deploy.step`` whose canary step was skipped): nothing stood between that
  release and every user.

Each opens an incident, or joins the one that is open. A gate or staging
rejection (``release.rejected``) never does: nothing reached users. While an
incident is open, every event about releases, traffic, probes, alerts and
notifications is linked to it — its timeline. ``OpeningRules`` remembers only
the unguarded deploys; time comes from the events, so tests need no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from steadylink.watch.journal import Event

TIMELINE_KINDS = ("deploy", "canary", "release", "supervisor", "probe", "alert", "notify", "traffic")


@dataclass(frozen=True)
class Open:
    title: str
    severity: int
    reason: str


@dataclass(frozen=True)
class Join:
    reason: str


@dataclass(frozen=True)
class Link:
    """Part of the open incident's timeline, not a reason for one."""


@dataclass(frozen=True)
class Ignore:
    pass


Decision = Open | Join | Link | Ignore


@dataclass
class OpeningRules:
    unguarded_window: timedelta = timedelta(hours=1)
    _unguarded: dict[str, datetime] = field(default_factory=dict)

    def decide(self, event: Event, *, has_open: bool) -> Decision:
        self._remember(event)
        trigger = self._trigger(event)
        if trigger is not None:
            return Join(trigger.reason) if has_open else trigger
        if has_open and is_timeline_kind(event.kind):
            return Link()
        return Ignore()

    def _remember(self, event: Event) -> None:
        body = event.body
        is_unguarded = (event.kind == "deploy.started" and bool(body.get("no_canary"))) or (
            event.kind == "deploy.step" and body.get("step") == "canary" and body.get("verdict") == "skipped"
        )
        if is_unguarded and event.release:
            self._unguarded[event.release] = event.at
        cutoff = event.at - self.unguarded_window
        for release, at in list(self._unguarded.items()):
            if at < cutoff:
                del self._unguarded[release]

    def _trigger(self, event: Event) -> Open | None:
        body = event.body
        if event.kind == "alert.firing":
            summary = str(body.get("summary") or body.get("rule") or "an alert")
            if body.get("severity") == "page":
                return Open(f"Paged: {summary}", 1, "an alert paged")
            if self._unguarded:
                releases = ", ".join(sorted(self._unguarded))
                return Open(
                    f"{summary} after deploy --no-canary of {releases}",
                    1,
                    "an alert fired after a deploy without canary",
                )
        if (
            event.kind == "release.rolled_back"
            and body.get("reached_users")
            and body.get("step")
            in (
                "canary",
                "bake",
            )
        ):
            release = event.release or "a release"
            return Open(
                f"Release {release} failed for users and was rolled back ({body.get('step')})",
                2,
                "a release that reached users was rolled back",
            )
        return None


def is_timeline_kind(kind: str) -> bool:
    return kind.split(".", 1)[0] in TIMELINE_KINDS

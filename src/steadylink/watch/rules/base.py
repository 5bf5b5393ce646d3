"""What every rule sees (``Observations``), says (``Verdict``) and is (``Rule``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from steadylink.registry import Registry
from steadylink.settings import Settings
from steadylink.watch.checks import Readings
from steadylink.watch.series import Series

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class RollbackSeen:
    at_s: int
    release: str | None
    reason: str


@dataclass(frozen=True)
class ProbeStreak:
    """Where one probe stands: its failed results in a row (0 after a good one), the seconds of
    the latest of them (at most ``STREAK_KEPT``) and why the last one failed."""

    failed_runs: int = 0
    last_error: str | None = None
    failed_at: tuple[int, ...] = ()


STREAK_KEPT = 32


@dataclass(frozen=True)
class Observations:
    """One moment of what the guard knows, in unix seconds (``now_s``: the last whole second)."""

    now_s: int
    liveness: Series  # the redirect probe: one good or bad count a second
    traffic: Series  # front-door requests: good and failed per second
    latencies_ms: Sequence[float] = ()  # redirect probe latencies of the latency window
    probe_silence_seconds: float = 0.0  # since the last probe result (monotonic)
    readings: Readings = field(default_factory=Readings)
    rollbacks: Sequence[RollbackSeen] = ()
    # every probe by its name: production's as ``create``, a canary socket's as ``create@canary``
    probes: Mapping[str, ProbeStreak] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    active: bool
    summary: str
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Rule:
    """One alert rule. ``name`` is unique; ``kind`` names its class in ``RULE_KINDS``."""

    kind: ClassVar[str] = ""
    name: str
    severity: Severity
    for_seconds: float = 0.0  # the condition must hold this long before the alert fires
    clear_seconds: float = 3.0  # and be gone this long before it resolves (no flapping)
    description: str = ""

    def evaluate(self, obs: Observations) -> Verdict:
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        raise NotImplementedError


RULE_KINDS: Registry[type[Rule]] = Registry("rule kind")


def rule_kind(cls: type[Rule]) -> type[Rule]:
    """Register a rule class; a second class of the same kind is a bug, said at import."""
    return RULE_KINDS.register(cls.kind, cls)


def build_rules(settings: Settings) -> list[Rule]:
    rules: list[Rule] = []
    for cls in RULE_KINDS.values():
        rules += cls.from_settings(settings)
    names = [r.name for r in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RuntimeError(f"alert rules {twice} are defined twice")
    return rules

"""A second-by-second simulation of the watch's decisions: synthetic probe and traffic
series, every rule evaluated, the alert book stepped, a fake clock, no sleeping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from steadylink.settings import Settings
from steadylink.watch.alerts import AlertBook, Change, Timing
from steadylink.watch.checks import Readings
from steadylink.watch.rules import Observations, ProbeStreak, RollbackSeen, Rule, build_rules
from steadylink.watch.series import Series

T0 = 1_800_000_000  # a whole minute, 2027-01-15


@dataclass
class Sim:
    settings: Settings = field(default_factory=Settings)
    now_s: int = T0
    liveness: Series = field(default_factory=Series)
    traffic: Series = field(default_factory=Series)
    readings: Readings = field(default_factory=Readings)
    rollbacks: list[RollbackSeen] = field(default_factory=list)
    latencies: list[tuple[int, float]] = field(default_factory=list)
    silence_s: float = 0.0
    probes: dict[str, ProbeStreak] = field(default_factory=dict)
    changes: list[tuple[int, Change]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules: dict[str, Rule] = {r.name: r for r in build_rules(self.settings)}
        self.book = AlertBook(
            Timing(self.settings.watch.renotify_seconds, self.settings.notify.escalate_after_seconds)
        )

    def second(
        self,
        *,
        probe_ok: bool | None = True,
        requests: int = 0,
        failures: int = 0,
        latency_ms: float = 5.0,
        only: set[str] | None = None,
        results: Mapping[str, bool] = MappingProxyType({}),
    ) -> list[Change]:
        """One more second: a liveness result (None: none came), other probes' ``results``
        (``{"create": False}``), traffic, then every rule."""
        self.now_s += 1
        for name, ok in results.items():
            was = self.probes.get(name, ProbeStreak())
            self.probes[name] = (
                ProbeStreak() if ok
                else ProbeStreak(was.failed_runs + 1, f"{name} failed", (*was.failed_at, self.now_s))
            )  # fmt: skip
        if probe_ok is not None:
            self.liveness.add(self.now_s, good=int(probe_ok), bad=int(not probe_ok))
            self.silence_s = 0.0
            if probe_ok:
                self.latencies.append((self.now_s, latency_ms))
        else:
            self.silence_s += 1.0
        if requests:
            self.traffic.add(self.now_s, good=requests - failures, bad=failures)
        window = self.settings.watch.latency_window_seconds
        obs = Observations(
            now_s=self.now_s, liveness=self.liveness, traffic=self.traffic,
            latencies_ms=[ms for at, ms in self.latencies if self.now_s - at < window],
            probe_silence_seconds=self.silence_s, readings=self.readings, rollbacks=self.rollbacks,
            probes=dict(self.probes),
        )  # fmt: skip
        rules = {n: r for n, r in self.rules.items() if only is None or n in only}
        verdicts = {name: (rule, rule.evaluate(obs)) for name, rule in rules.items()}
        step = self.book.step(float(self.now_s), verdicts)
        self.changes += [(self.now_s, c) for c in step]
        return step

    def run(self, seconds: int, **kwargs: object) -> list[Change]:
        out: list[Change] = []
        for _ in range(seconds):
            out += self.second(**kwargs)  # type: ignore[arg-type]
        return out

    def fired(self, rule: str) -> list[int]:
        return [at for at, c in self.changes if c.kind == "firing" and c.alert.rule == rule]

    def resolved(self, rule: str) -> list[int]:
        return [at for at, c in self.changes if c.kind == "resolved" and c.alert.rule == rule]

    def pages(self) -> list[tuple[int, str]]:
        return [
            (at, c.alert.rule) for at, c in self.changes if c.kind == "firing" and c.alert.severity == "page"
        ]

    def with_readings(self, **values: object) -> None:
        self.readings = replace(self.readings, **values)  # type: ignore[arg-type]

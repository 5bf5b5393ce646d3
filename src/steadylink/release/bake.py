"""Bake: the promoted release serves everyone while the previous one stays warm.

``BakeWatch.observe`` judges the new release over the whole bake window with
the canary's rule (``CanaryPolicy.is_clear_failure``) against the error ratio
the previous release had before promotion: a burning error budget, a crash
loop or a latency jump means ``RollBack``, a weight change back to the warm
release; so do worker restarts or memory running away in the new release's
group (``CanaryPolicy.judge_group``: the baseline is the warm previous
release's group over the same time). After ``bake_seconds`` and at least ``min_requests`` requests it is
``Baked``: the guard stops the previous release and keeps its directory.
Pure like the canary; the guard does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steadylink.clock import Clock
from steadylink.release.canary import AbortCause, CanaryPolicy, GroupFigures, ServerFigures, Tally
from steadylink.release.history import Figure
from steadylink.settings import ReleaseSettings


@dataclass(frozen=True)
class BakePolicy:
    """How long to bake, and the canary's thresholds to judge it by."""

    seconds: float = 30.0
    canary: CanaryPolicy = field(default_factory=CanaryPolicy)

    @classmethod
    def from_settings(cls, settings: ReleaseSettings) -> BakePolicy:
        return cls(seconds=settings.bake_seconds, canary=CanaryPolicy.from_settings(settings))


@dataclass(frozen=True)
class BakeFigures:
    """The new release over the bake window so far."""

    seconds: float
    requests: int
    errors: int
    baseline_ratio: float
    threshold: float
    latency_ms: float | None

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_record(self) -> dict[str, Figure]:
        values: dict[str, Figure | None] = {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_ratio": round(self.error_ratio, 5),
            "baseline_ratio": round(self.baseline_ratio, 5),
            "threshold": round(self.threshold, 5),
            "latency_ms": self.latency_ms,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Baking:
    """Keep baking; with ``needs_synthetic_traffic`` real traffic is too thin."""

    figures: BakeFigures
    needs_synthetic_traffic: bool = False


@dataclass(frozen=True)
class RollBack:
    """The new release is failing: send everyone back to the warm previous release."""

    reason: str
    figures: BakeFigures
    cause: AbortCause


@dataclass(frozen=True)
class Baked:
    """The bake passed: stop the previous release, keep its directory."""

    figures: BakeFigures


BakeDecision = Baking | RollBack | Baked


class BakeWatch:
    """Watches the promoted release from ``start`` (its counters at promotion).

    ``observe`` takes the release's cumulative figures, the previous release's
    error ratio before promotion and ``clock.monotonic()`` at sampling time.
    RollBack and Baked are final; observing afterwards repeats them.
    """

    def __init__(
        self,
        policy: BakePolicy,
        clock: Clock,
        *,
        start: ServerFigures,
        start_group: GroupFigures | None = None,
        start_baseline_group: GroupFigures | None = None,
    ) -> None:
        self.policy = policy
        self._groups_at_start = (start_group or GroupFigures(), start_baseline_group or GroupFigures())
        self._tally = Tally(start)
        self._started = clock.monotonic()
        self._down_since: float | None = None
        self._final: RollBack | Baked | None = None

    def observe(
        self,
        sample: ServerFigures,
        baseline_ratio: float,
        now: float,
        *,
        baseline_latency_ms: float | None = None,
        is_crashing: bool = False,
        group: GroupFigures | None = None,
        baseline_group: GroupFigures | None = None,
    ) -> BakeDecision:
        if self._final is not None:
            return self._final
        rule = self.policy.canary
        self._tally.add(sample)
        figures = BakeFigures(
            seconds=now - self._started,
            requests=self._tally.requests,
            errors=self._tally.errors,
            baseline_ratio=baseline_ratio,
            threshold=rule.error_threshold(baseline_ratio),
            latency_ms=sample.latency_ms,
        )
        failure = self._judge_failure(sample, figures, now, baseline_latency_ms, is_crashing)
        if failure is None:
            start, baseline_start = self._groups_at_start
            trouble = rule.judge_group(
                "the new release",
                start,
                group or GroupFigures(),
                baseline_start,
                baseline_group or GroupFigures(),
            )
            if trouble is not None:
                failure = RollBack(trouble[1], figures, trouble[0])
        if failure is not None:
            self._final = failure
            return failure
        is_thin = figures.requests < rule.min_requests
        if figures.seconds < self.policy.seconds or is_thin:
            # Half-way through with too few requests: ask early, so the bake can end on time.
            is_late = figures.seconds >= self.policy.seconds / 2
            return Baking(figures, needs_synthetic_traffic=is_thin and is_late)
        self._final = Baked(figures)
        return self._final

    def _judge_failure(
        self,
        sample: ServerFigures,
        figures: BakeFigures,
        now: float,
        baseline_latency_ms: float | None,
        is_crashing: bool,
    ) -> RollBack | None:
        rule = self.policy.canary
        if is_crashing:
            return RollBack("the new release is crash-looping", figures, AbortCause.CRASH)
        if not sample.is_down:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        elif now - self._down_since >= rule.down_grace_seconds:
            reason = f"the new release has been DOWN for {now - self._down_since:.1f} s"
            return RollBack(reason, figures, AbortCause.CRASH)
        if rule.is_clear_failure(figures.requests, figures.errors, figures.threshold):
            reason = (
                f"{figures.errors} errors in {figures.requests} requests "
                f"({figures.error_ratio:.1%}) during the bake, against "
                f"{figures.baseline_ratio:.2%} before promotion (limit {figures.threshold:.2%})"
            )
            return RollBack(reason, figures, AbortCause.ERRORS)
        latency = figures.latency_ms
        if (
            latency is not None
            and baseline_latency_ms is not None
            and figures.requests >= rule.latency_min_requests
            and latency > rule.latency_limit_ms(baseline_latency_ms)
        ):
            reason = (
                f"latency {latency:.0f} ms against {baseline_latency_ms:.0f} ms before "
                f"promotion (limit {rule.latency_limit_ms(baseline_latency_ms):.0f} ms)"
            )
            return RollBack(reason, figures, AbortCause.LATENCY)
        return None

"""Canary analysis: compare a candidate with the stable release, tick by tick.

``CanaryAnalysis.observe`` takes one ``Sample`` of cumulative per-server
counters (as HAProxy keeps them) and returns a ``Decision``; it does no I/O,
so the guard's executor sets weights and sends synthetic traffic, and tests
drive it with a ``FakeClock``.

The failure rule for errors. With ``n`` candidate requests and ``k`` errors,
and a threshold ``t = max(error_factor x baseline ratio, error_floor)``, the
candidate has *clearly* failed when all three hold:

- ``k / n > t``: it is worse than allowed right now, not just unlucky;
- ``k >= min_errors`` (3): one or two blips (a reset during start-up) are not
  a verdict on their own;
- ``P(X >= k) < alpha`` for ``X ~ Binomial(n, t)`` (alpha = 0.001): a release
  whose true error ratio were exactly ``t`` would show this many errors less
  than once in a thousand looks. An exact one-sided binomial test, not a
  normal or Wilson approximation, because the first requests are where a
  broken release must be caught and those approximations are wrong at small n.

With a 0 % baseline (``t`` = 1 %) that aborts a release failing every request
after 3 requests, one failing 30 % after about 10, one failing 2 % only after
some 1,000. A candidate whose error ratio is at or below the baseline's can
never fail it, since ``t >= baseline ratio``. The test runs on two windows,
the current step and the whole canary (errors that only show under a larger
share of the traffic, and slow failures that need every request as evidence);
the baseline is always the stable release over the whole canary.

Its processes, beside its answers. granian replaces a worker that exits
(``--respawn-failed-workers``), so a crash-looping release keeps a live leader
and answers most requests; each crash still fails what that worker held. So
every worker exit in the candidate's group (``GroupFigures.restarts``, counted
by the executor over all the group's processes) is a clear failure: a release
whose workers restart is not promoted. Memory: the candidate's group (all its
processes' resident memory) may grow by at most ``memory_growth_factor`` x
what the stable release's group grew over the same time, and growth under
``memory_growth_floor_mb`` is never judged (warm-up, allocator noise); above
``memory_ceiling_mb`` it fails whatever the stable release does. A leak that
takes minutes to show is not caught here; one that runs away in seconds (the
kind that exhausts a machine before the bake ends) is.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum

from steadylink.clock import Clock
from steadylink.errors import ConfigError
from steadylink.release.history import Figure
from steadylink.settings import ReleaseSettings

MB = 1024 * 1024
FULL_WEIGHT = 100  # HAProxy weights go to 256; percent maps 1:1 so weights read as shares.


@dataclass(frozen=True)
class ServerFigures:
    """One server's cumulative counters since HAProxy started, plus its latency now.

    ``requests`` counts times it was picked (``lbtot``), ``errors_5xx`` what
    failed there (5xx answered, retried away, broken responses). ``latency_ms``
    is a recent-window figure (HAProxy's ``rtime``), not a counter.
    """

    requests: int
    errors_5xx: int
    latency_ms: float | None = None
    is_down: bool = False


@dataclass(frozen=True)
class GroupFigures:
    """A worker group's processes at one tick (from ``/proc``; see ``release/processes.py``).

    ``restarts`` counts worker exits since the watch began (cumulative);
    ``rss_bytes`` is the resident memory of every process of the group, None
    when the guard cannot see it.
    """

    restarts: int = 0
    rss_bytes: int | None = None


@dataclass(frozen=True)
class Sample:
    """What the guard saw at one tick; ``is_crashing`` comes from its supervisor."""

    stable: ServerFigures
    candidate: ServerFigures
    is_crashing: bool = False
    candidate_group: GroupFigures = field(default_factory=GroupFigures)
    stable_group: GroupFigures = field(default_factory=GroupFigures)


@dataclass(frozen=True)
class Weights:
    """HAProxy weights for the two servers."""

    stable: int
    candidate: int

    @classmethod
    def for_percent(cls, percent: int) -> Weights:
        return cls(stable=FULL_WEIGHT - percent, candidate=percent)


class Tally:
    """Requests and errors on one server since a start, from its cumulative counters.

    Counters that go back mean HAProxy restarted them (a reload): the new
    values count from zero, as ``edge.figures.measure_figures`` does.
    """

    def __init__(self, start: ServerFigures) -> None:
        self._last = start
        self.requests = 0
        self.errors = 0

    def add(self, figures: ServerFigures) -> None:
        requests = figures.requests - self._last.requests
        errors = figures.errors_5xx - self._last.errors_5xx
        if requests < 0 or errors < 0:
            requests, errors = figures.requests, figures.errors_5xx
        self.requests += requests
        self.errors += errors
        self._last = figures


@dataclass(frozen=True)
class CanaryPolicy:
    """The thresholds a canary is judged by; see the module docstring for the rule."""

    steps: tuple[int, ...] = (5, 25, 50, 100)
    min_requests: int = 50
    min_seconds: float = 3.0
    error_factor: float = 5.0
    error_floor: float = 0.01
    latency_factor: float = 3.0
    alpha: float = 0.001
    min_errors: int = 3
    latency_min_requests: int = 20
    # Below this, latency differences are scheduler noise (and rtime is whole ms).
    latency_floor_ms: float = 10.0
    # A server briefly DOWN is a restart; DOWN this long is a crash loop.
    down_grace_seconds: float = 2.0
    memory_growth_factor: float = 3.0
    memory_growth_floor_mb: float = 200.0
    memory_ceiling_mb: float = 4096.0

    def __post_init__(self) -> None:
        steps = self.steps
        if not steps or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ConfigError(f"release.canary_steps must be increasing, got {list(steps)}.")
        if steps[0] < 1 or steps[-1] > FULL_WEIGHT:
            raise ConfigError("release.canary_steps must be percentages 1..100.")

    @classmethod
    def from_settings(cls, settings: ReleaseSettings) -> CanaryPolicy:
        return cls(
            steps=settings.canary_steps,
            min_requests=settings.canary_min_requests,
            min_seconds=settings.canary_min_seconds,
            error_factor=settings.canary_error_factor,
            error_floor=settings.canary_error_floor,
            latency_factor=settings.canary_latency_factor,
            memory_growth_factor=settings.memory_growth_factor,
            memory_growth_floor_mb=settings.memory_growth_floor_mb,
            memory_ceiling_mb=settings.memory_ceiling_mb,
        )

    def error_threshold(self, baseline_ratio: float) -> float:
        return min(1.0, max(self.error_factor * baseline_ratio, self.error_floor))

    def is_clear_failure(self, requests: int, errors: int, threshold: float) -> bool:
        """Whether ``errors`` in ``requests`` clearly exceed ``threshold`` (the rule above)."""
        if requests <= 0 or errors < self.min_errors or errors <= threshold * requests:
            return False
        return binomial_tail(requests, errors, threshold) < self.alpha

    def latency_limit_ms(self, baseline_ms: float) -> float:
        return self.latency_factor * max(baseline_ms, self.latency_floor_ms)

    def judge_group(
        self,
        who: str,
        start: GroupFigures,
        now: GroupFigures,
        baseline_start: GroupFigures,
        baseline_now: GroupFigures,
    ) -> tuple[AbortCause, str] | None:
        """Why ``who``'s group clearly failed since ``start`` (restarts, memory), or None."""
        restarts = now.restarts - start.restarts
        if restarts > 0:
            reason = f"{restarts} worker restart(s) in {who}'s group (a worker exited and was replaced)"
            return AbortCause.CRASH, reason
        if now.rss_bytes is None:
            return None
        rss_mb = now.rss_bytes / MB
        if rss_mb > self.memory_ceiling_mb:
            ceiling = self.memory_ceiling_mb
            return AbortCause.MEMORY, f"{who}'s workers use {rss_mb:,.0f} MB (ceiling {ceiling:,.0f} MB)"
        if start.rss_bytes is None:
            return None
        growth_mb = (now.rss_bytes - start.rss_bytes) / MB
        baseline_mb = 0.0
        if baseline_start.rss_bytes is not None and baseline_now.rss_bytes is not None:
            baseline_mb = max(0.0, (baseline_now.rss_bytes - baseline_start.rss_bytes) / MB)
        limit_mb = max(self.memory_growth_factor * baseline_mb, self.memory_growth_floor_mb)
        if growth_mb > limit_mb:
            return AbortCause.MEMORY, (
                f"{who}'s workers grew by {growth_mb:,.0f} MB to {rss_mb:,.0f} MB, against "
                f"{baseline_mb:,.0f} MB on the stable release (limit {limit_mb:,.0f} MB)"
            )
        return None


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed upward from k (cheap when k > n p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    log_term += k * log_p + (n - k) * log_q
    term, total = math.exp(log_term), 0.0
    for i in range(k, n + 1):
        total += term
        if term < total * 1e-12:
            break
        term *= (n - i) / (i + 1) * p / (1 - p)
    return min(1.0, total)


@dataclass(frozen=True)
class CanaryFigures:
    """The figures behind a decision, for progress lines and the release record."""

    weight_percent: int
    step_seconds: float
    requests: int
    errors: int
    total_requests: int
    total_errors: int
    baseline_requests: int
    baseline_errors: int
    threshold: float
    latency_ms: float | None
    baseline_latency_ms: float | None

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def baseline_ratio(self) -> float:
        return self.baseline_errors / self.baseline_requests if self.baseline_requests else 0.0

    def to_record(self) -> dict[str, Figure]:
        values: dict[str, Figure | None] = {
            "weight_percent": self.weight_percent,
            "step_seconds": round(self.step_seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_ratio": round(self.error_ratio, 5),
            "total_requests": self.total_requests,
            "total_errors": self.total_errors,
            "baseline_ratio": round(self.baseline_ratio, 5),
            "threshold": round(self.threshold, 5),
            "latency_ms": self.latency_ms,
            "baseline_latency_ms": self.baseline_latency_ms,
        }
        return {key: value for key, value in values.items() if value is not None}


class AbortCause(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"
    CRASH = "crash"
    MEMORY = "memory"


@dataclass(frozen=True)
class Hold:
    """Keep gathering; with ``needs_synthetic_traffic`` real traffic is too thin."""

    figures: CanaryFigures
    needs_synthetic_traffic: bool = False


@dataclass(frozen=True)
class Advance:
    """The step passed: move the candidate to ``next_weight_percent``."""

    next_weight_percent: int
    figures: CanaryFigures

    @property
    def weights(self) -> Weights:
        return Weights.for_percent(self.next_weight_percent)


@dataclass(frozen=True)
class Promote:
    """Every step passed: the candidate becomes the release."""

    figures: CanaryFigures


@dataclass(frozen=True)
class Abort:
    """A clear failure: set the candidate's weight to 0 now."""

    reason: str
    figures: CanaryFigures
    cause: AbortCause

    @property
    def weights(self) -> Weights:
        return Weights.for_percent(0)


Decision = Hold | Advance | Promote | Abort


class CanaryAnalysis:
    """The canary's state machine, from the first step to Promote or Abort.

    ``start`` is the sample taken just before the candidate got its first
    weight (``weight_percent``); every later ``observe`` gets a fresh sample and
    ``clock.monotonic()`` at the time it was taken. The executor applies each
    ``Advance`` at once: the sample that advanced is the next step's origin.
    Promote and Abort are final; observing afterwards repeats them.
    """

    def __init__(self, policy: CanaryPolicy, clock: Clock, *, start: Sample) -> None:
        self.policy = policy
        self._stable = Tally(start.stable)
        self._candidate = Tally(start.candidate)
        self._step_origin = (0, 0)  # the candidate's tally when the step began
        self._step_index = 0
        self._step_started = clock.monotonic()
        self._down_since: float | None = None
        self._final: Promote | Abort | None = None
        self._groups_at_start = (start.candidate_group, start.stable_group)

    @property
    def weight_percent(self) -> int:
        return self.policy.steps[self._step_index]

    @property
    def weights(self) -> Weights:
        return Weights.for_percent(self.weight_percent)

    def observe(self, sample: Sample, now: float) -> Decision:
        if self._final is not None:
            return self._final
        figures = self._measure(sample, now)
        failure = self._judge_failure(sample, figures, now)
        if failure is not None:
            self._final = failure
            return failure
        if figures.requests < self.policy.min_requests or now - self._step_started < (
            self.policy.min_seconds
        ):
            is_thin = now - self._step_started >= self.policy.min_seconds
            return Hold(figures, needs_synthetic_traffic=is_thin)
        if self._step_index == len(self.policy.steps) - 1:
            self._final = Promote(figures)
            return self._final
        self._step_index += 1
        self._step_origin = (self._candidate.requests, self._candidate.errors)
        self._step_started = now
        return Advance(self.weight_percent, figures)

    def _measure(self, sample: Sample, now: float) -> CanaryFigures:
        stable, candidate = self._stable, self._candidate
        stable.add(sample.stable)
        candidate.add(sample.candidate)
        baseline_ratio = stable.errors / stable.requests if stable.requests > 0 else 0.0
        step_requests, step_errors = self._step_origin
        return CanaryFigures(
            weight_percent=self.weight_percent,
            step_seconds=now - self._step_started,
            requests=candidate.requests - step_requests,
            errors=candidate.errors - step_errors,
            total_requests=candidate.requests,
            total_errors=candidate.errors,
            baseline_requests=stable.requests,
            baseline_errors=stable.errors,
            threshold=self.policy.error_threshold(baseline_ratio),
            latency_ms=sample.candidate.latency_ms,
            baseline_latency_ms=sample.stable.latency_ms,
        )

    def _judge_failure(self, sample: Sample, figures: CanaryFigures, now: float) -> Abort | None:
        policy = self.policy
        if sample.is_crashing:
            return Abort("the candidate is crash-looping", figures, AbortCause.CRASH)
        candidate_start, stable_start = self._groups_at_start
        trouble = policy.judge_group(
            "the candidate", candidate_start, sample.candidate_group, stable_start, sample.stable_group
        )
        if trouble is not None:
            cause, reason = trouble
            return Abort(reason, figures, cause)
        if not sample.candidate.is_down:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        elif now - self._down_since >= policy.down_grace_seconds:
            down_s = now - self._down_since
            reason = f"the candidate has been DOWN in HAProxy for {down_s:.1f} s"
            return Abort(reason, figures, AbortCause.CRASH)
        windows = (
            (f"in the {figures.weight_percent} % step", figures.requests, figures.errors),
            ("over the whole canary", figures.total_requests, figures.total_errors),
        )
        for where, requests, errors in windows:
            if policy.is_clear_failure(requests, errors, figures.threshold):
                reason = describe_errors(errors, requests, where, figures)
                return Abort(reason, figures, AbortCause.ERRORS)
        latency, baseline = figures.latency_ms, figures.baseline_latency_ms
        if (
            latency is not None
            and baseline is not None
            and figures.total_requests >= policy.latency_min_requests
            and latency > policy.latency_limit_ms(baseline)
        ):
            reason = (
                f"latency {latency:.0f} ms against {baseline:.0f} ms on the stable release "
                f"(limit {policy.latency_limit_ms(baseline):.0f} ms)"
            )
            return Abort(reason, figures, AbortCause.LATENCY)
        return None


def describe_errors(errors: int, requests: int, where: str, figures: CanaryFigures) -> str:
    """One sentence for an error abort, with the figures that decided it."""
    return (
        f"{errors} errors in {requests} requests ({errors / requests:.1%}) {where}, "
        f"against {figures.baseline_ratio:.2%} on the stable release "
        f"(limit {figures.threshold:.2%})"
    )

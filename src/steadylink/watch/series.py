"""Good and bad counts over time, for the windows the alert rules look at.

One ``Series`` per signal: the liveness probe (one count a second: the
second was good or bad) and the front door's requests (HAProxy's counters,
requests and failures per second). Seconds are kept for ``seconds_kept``
(enough for the 30-minute and 1-hour windows at full resolution), minutes for
``minutes_kept`` (the 6-hour and 3-day windows). A window longer than half an
hour is summed from minutes, so its far edge is exact to the minute — for a
3-day window that is 0.02 %, below anything a rule could notice.

A second with no count is a gap, not a good second: ``Tally.seconds`` says how
many seconds of a window had data, and rules treat missing data as such.
"""

from __future__ import annotations

from dataclasses import dataclass

SECOND_WINDOW_MAX = 1800


@dataclass(frozen=True)
class Tally:
    good: int = 0
    bad: int = 0
    seconds: int = 0  # seconds of the window that had data

    @property
    def total(self) -> int:
        return self.good + self.bad

    @property
    def bad_ratio(self) -> float:
        return self.bad / self.total if self.total else 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.good + other.good, self.bad + other.bad, self.seconds + other.seconds)


class Series:
    def __init__(self, *, seconds_kept: int = 2 * 3600, minutes_kept: int = 4 * 24 * 60) -> None:
        self.seconds_kept = seconds_kept
        self.minutes_kept = minutes_kept
        self._seconds: dict[int, list[int]] = {}
        self._minutes: dict[int, list[int]] = {}  # at_min -> [good, bad, seconds with data]
        self.last_at: int | None = None

    def add(self, at_s: int, *, good: int = 0, bad: int = 0) -> None:
        """Count ``good``/``bad`` in second ``at_s`` (unix seconds); adding twice sums."""
        cell = self._seconds.get(at_s)
        minute = self._minutes.setdefault(at_s // 60 * 60, [0, 0, 0])
        if cell is None:
            cell = self._seconds[at_s] = [0, 0]
            minute[2] += 1
        cell[0] += good
        cell[1] += bad
        minute[0] += good
        minute[1] += bad
        if self.last_at is None or at_s > self.last_at:
            self.last_at = at_s
            if at_s % 60 == 0:
                self._prune(at_s)

    def add_minute(self, at_min: int, *, good: int, bad: int, seconds: int) -> None:
        """A whole minute from the per-minute table (a guard that restarts reloads them)."""
        self._minutes[at_min] = [good, bad, seconds]

    def window(self, now_s: int, seconds: int) -> Tally:
        """Counts over the ``seconds`` seconds ending with second ``now_s`` (inclusive)."""
        start = now_s - seconds + 1
        if seconds <= SECOND_WINDOW_MAX:
            good = bad = present = 0
            get = self._seconds.get
            for at in range(start, now_s + 1):
                cell = get(at)
                if cell is not None:
                    good += cell[0]
                    bad += cell[1]
                    present += 1
            return Tally(good, bad, present)
        good = bad = present = 0
        for at_min in range(start // 60 * 60, now_s + 1, 60):
            cell = self._minutes.get(at_min)
            if cell is not None:
                good += cell[0]
                bad += cell[1]
                present += cell[2]
        return Tally(good, bad, present)

    def last(self, now_s: int, seconds: int) -> list[tuple[int, int] | None]:
        """The last ``seconds`` seconds, oldest first: (good, bad), or None for a gap."""
        out: list[tuple[int, int] | None] = []
        for at in range(now_s - seconds + 1, now_s + 1):
            cell = self._seconds.get(at)
            out.append((cell[0], cell[1]) if cell is not None else None)
        return out

    def _prune(self, now_s: int) -> None:
        for at in [a for a in self._seconds if a <= now_s - self.seconds_kept]:
            del self._seconds[at]
        for at in [a for a in self._minutes if a <= now_s - self.minutes_kept * 60]:
            del self._minutes[at]

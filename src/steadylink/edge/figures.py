"""Per-slot counters from ``show stat`` and the figures a canary compares.

HAProxy 2.6 counts a response it retried on another server (``retry-on 500``
and friends) neither in the slot's ``hrsp_5xx`` nor in ``observe layer7``:
the attempt shows up only as ``wredis`` (with ``option redispatch 1``). So a
slot's failures are ``hrsp_5xx + wredis + eresp + econ`` and its attempts are
``lbtot`` (times it was picked), not the responses it returned.

A slot's fallback server (``s0b``, ``edge/config.py``) carries its traffic
while the slot itself is marked down; its counters are the slot's too, so
they are added to the slot's row (status and weight stay the slot's own).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

from steadylink.edge.config import BACKEND

_COUNTERS = (
    "scur", "stot", "lbtot", "econ", "eresp", "wretr", "wredis",
    "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
    "weight", "lastchg", "qtime", "rtime", "ttime", "chkfail", "hanafail",
)  # fmt: skip


@dataclass(frozen=True)
class ServerStats:
    """One slot's row of ``show stat``; counters are cumulative since start."""

    slot: int
    status: str
    check_status: str
    weight: int
    scur: int
    stot: int
    lbtot: int
    econ: int
    eresp: int
    wretr: int
    wredis: int
    hrsp_1xx: int
    hrsp_2xx: int
    hrsp_3xx: int
    hrsp_4xx: int
    hrsp_5xx: int
    hrsp_other: int
    lastchg: int
    qtime: int
    rtime: int
    ttime: int
    chkfail: int
    hanafail: int

    @property
    def is_up(self) -> bool:
        return self.status.startswith("UP")

    @property
    def responses(self) -> int:
        return (
            self.hrsp_1xx + self.hrsp_2xx + self.hrsp_3xx
            + self.hrsp_4xx + self.hrsp_5xx + self.hrsp_other
        )  # fmt: skip

    @property
    def failures(self) -> int:
        return self.hrsp_5xx + self.wredis + self.eresp + self.econ


@dataclass(frozen=True)
class SlotFigures:
    """What happened on one slot between two snapshots."""

    slot: int
    requests: int
    responses: int
    server_errors: int
    retried_away: int
    failures: int
    avg_response_ms: int

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def parse_server_stats(text: str, *, backend: str = BACKEND) -> dict[int, ServerStats]:
    """Parse ``show stat`` CSV into the backend's slots, keyed by slot number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("# ")))
    stats: dict[int, ServerStats] = {}
    fallbacks: dict[int, dict[str, int]] = {}
    for row in reader:
        name = row.get("svname") or ""
        if row.get("pxname") != backend:
            continue
        counters = {key: _to_int(row.get(key)) for key in _COUNTERS}
        if name.endswith("b") and _is_slot_name(name[:-1]):
            fallbacks[int(name[1:-1])] = counters
        elif _is_slot_name(name):
            slot = int(name[1:])
            stats[slot] = ServerStats(
                slot=slot,
                status=row.get("status") or "",
                check_status=(row.get("check_status") or "").removeprefix("* "),
                **counters,
            )
    for slot, counters in fallbacks.items():
        if slot in stats:
            own = stats[slot]
            added = {k: getattr(own, k) + counters[k] for k in _SUMMED}
            stats[slot] = replace(own, **added)
    return stats


# what a fallback server adds to its slot: counts of things that happened
_SUMMED = (
    "scur", "stot", "lbtot", "econ", "eresp", "wretr", "wredis",
    "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
)  # fmt: skip


def measure_figures(before: dict[int, ServerStats], after: dict[int, ServerStats]) -> dict[int, SlotFigures]:
    """Per-slot deltas between two snapshots.

    A slot missing before, or whose counters went back (HAProxy reloaded),
    counts from zero.
    """
    figures: dict[int, SlotFigures] = {}
    for slot, now in after.items():
        then = before.get(slot)
        if then is not None and now.lbtot < then.lbtot:
            then = None
        figures[slot] = SlotFigures(
            slot=slot,
            requests=now.lbtot - (then.lbtot if then else 0),
            responses=now.responses - (then.responses if then else 0),
            server_errors=now.hrsp_5xx - (then.hrsp_5xx if then else 0),
            retried_away=now.wredis - (then.wredis if then else 0),
            failures=now.failures - (then.failures if then else 0),
            avg_response_ms=now.rtime,
        )
    return figures


def _is_slot_name(name: str) -> bool:
    return len(name) > 1 and name[0] == "s" and name[1:].isdigit()


def _to_int(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0

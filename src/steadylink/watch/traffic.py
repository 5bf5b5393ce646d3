"""The request-based signal: what the front door answered, from HAProxy's frontend counters.

The frontend row of ``show stat`` counts every request users sent
(``req_tot``) and every 5xx they got (``hrsp_5xx``), including the 503 HAProxy
answers itself when no release can take a request, the 504 of a timeout and
the 502 of a broken connection; a request a bad canary failed but HAProxy
replayed on the stable release is not counted (the user never saw it). The
per-slot rows (``edge/figures.py``) say which release served what; they feed
``/metrics``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

FRONTEND = "web"  # the frontend's name in edge/config.py
SHOW_FRONTEND_STATS = f"show stat {FRONTEND} 1 -1"


@dataclass(frozen=True)
class FrontCounters:
    requests: int
    failures: int


def parse_front_counters(text: str) -> FrontCounters | None:
    for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
        if row.get("pxname") == FRONTEND and row.get("svname") == "FRONTEND":
            return FrontCounters(_int(row.get("req_tot")), _int(row.get("hrsp_5xx")))
    return None


def counted_between(before: FrontCounters | None, after: FrontCounters) -> tuple[int, int]:
    """(requests, failures) since ``before``; counters that went back (HAProxy restarted) count from zero."""
    if before is None or after.requests < before.requests or after.failures < before.failures:
        before = FrontCounters(0, 0)
    requests = after.requests - before.requests
    return requests, min(requests, after.failures - before.failures)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0

"""The report's chart: front-door error ratio and latency over the incident window, moments marked.

Error ratio comes from the front door's per-second figures (``traffic.py``),
in buckets sized so the window has about 120 of them; latency is the p99 of
the liveness probe (``probe_seconds`` of ``redirect``, written by the watch
part; without it the chart says there is no measurement). Deploys,
alerts, pages and rollbacks are vertical lines. Rendered with matplotlib's
Agg backend (no display), to PNG bytes.
"""

from __future__ import annotations

import io
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from steadylink.clock import utc
from steadylink.incidents.traffic import read_traffic

MARKS = {
    "deploy.started": ("deploy", "#4338ca"),
    "alert.firing": ("alert", "#b45309"),
    "notify.sent": ("page", "#7c3aed"),
    "release.rolled_back": ("rollback", "#047857"),
}
COLORS = dict(MARKS.values())


@dataclass(frozen=True)
class Mark:
    at: datetime
    label: str


@dataclass(frozen=True)
class Series:
    times: list[datetime]
    error_ratio: list[float]  # NaN where there was no traffic
    latency_ms: list[float | None]
    latency_label: str


def read_series(conn: sqlite3.Connection, since: datetime, until: datetime) -> Series:
    lo, hi = int(utc(since).timestamp()), int(utc(until).timestamp())
    bucket = max(1, math.ceil((hi - lo) / 120))
    traffic = read_traffic(conn, since, until)
    probes = _probe_latencies(conn, lo, hi)
    times, ratios, latencies = [], [], []
    for start in range(lo, hi + 1, bucket):
        inside = [s for s in traffic if start <= s.at_s < start + bucket]
        requests = sum(s.requests for s in inside)
        failures = sum(s.failures for s in inside)
        times.append(datetime.fromtimestamp(start, tz=UTC))
        ratios.append(failures / requests if requests else math.nan)  # no traffic: a gap, not 0 %
        values = sorted(v for at, v in probes if start <= at < start + bucket)
        latencies.append(values[min(len(values) - 1, math.ceil(len(values) * 0.99) - 1)] if values else None)
    label = "p99 latency, ms (liveness probe)" if probes else "p99 latency: no probe measurements"
    return Series(times, ratios, latencies, label)


def render_chart(series: Series, marks: list[Mark], *, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, ratio_axis = plt.subplots(figsize=(9, 3.6), dpi=110)
    try:
        ratio_axis.plot(
            [_day_number(at) for at in series.times],
            [r * 100 for r in series.error_ratio],
            color="#b91c1c",
            label="5xx, % of requests",
        )
        ratio_axis.set_ylabel("5xx, % of requests")
        highest = max((r * 100 for r in series.error_ratio if not math.isnan(r)), default=0.0)
        ratio_axis.set_ylim(bottom=0, top=max(5.0, highest * 1.15))
        latency_axis = ratio_axis.twinx()
        points = [(t, v) for t, v in zip(series.times, series.latency_ms, strict=True) if v is not None]
        if points:
            latency_axis.plot(
                [_day_number(p[0]) for p in points],
                [p[1] for p in points],
                color="#475569",
                linestyle="--",
                label=series.latency_label,
            )
        latency_axis.set_ylabel(series.latency_label)
        latency_axis.set_ylim(bottom=0, top=max((p[1] for p in points), default=1.0) * 1.4)
        for mark in marks:
            x = _day_number(mark.at)
            ratio_axis.axvline(x, color=COLORS.get(mark.label, "#0f172a"), linewidth=1)
            ratio_axis.annotate(
                mark.label,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
            )
        ratio_axis.xaxis_date()
        ratio_axis.set_title(title, fontsize=10)
        ratio_axis.set_xlabel("UTC")
        handles = ratio_axis.get_legend_handles_labels()[0] + latency_axis.get_legend_handles_labels()[0]
        ratio_axis.legend(handles=handles, loc="upper left", fontsize=8)
        figure.autofmt_xdate()
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def _probe_latencies(conn: sqlite3.Connection, lo: int, hi: int) -> list[tuple[int, float]]:
    try:
        rows = conn.execute(
            "SELECT at_s, latency_ms FROM probe_seconds WHERE probe = 'redirect' AND at_s >= ? AND at_s <= ?"
            " AND latency_ms IS NOT NULL",
            (lo, hi),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [(int(r[0]), float(r[1])) for r in rows]


def _day_number(at: datetime) -> float:
    """Matplotlib's date axis unit: days since 1970-01-01 UTC (its default epoch)."""
    return utc(at).timestamp() / 86400.0

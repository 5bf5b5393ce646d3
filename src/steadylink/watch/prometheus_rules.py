"""Prometheus recording and alerting rules equal to the built-in ones, over ``/metrics``.

For teams that already run Prometheus and Alertmanager: the same objective,
the same burn-rate factors (from ``settings``, rescaled to the period as in
``watch/rules/burn_rate.py``) and the same fast rules, written as a rules
file (``steadylink export prometheus-rules``). Prometheus sees only what it
scrapes, so the fast rules need a scrape interval of a second or two on the
ops port (``/metrics``) to page as fast as the guard does; the group is
evaluated every ``EVALUATION`` for the same reason.

YAML is written by hand (JSON strings are YAML scalars), so no YAML library
is needed.
"""

from __future__ import annotations

import json
from typing import Any

from steadylink.settings import Settings
from steadylink.watch.rules.burn_rate import WORKBOOK, _span
from steadylink.watch.slo import Objective

EVALUATION = "1s"
PROBE_RATIO = "steadylink:probe_error_ratio:rate{w}"
REQUEST_RATIO = "steadylink:request_error_ratio:rate{w}"


def _windows() -> list[str]:
    spans = {_span(s) for _, long_s, short_s, _ in WORKBOOK for s in (long_s, short_s)}
    return sorted(spans, key=_seconds)


def _seconds(span: str) -> int:
    return int(span[:-1]) * {"m": 60, "h": 3600, "d": 86_400}[span[-1]]


def recording_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for w in _windows():
        rules.append({
            "record": PROBE_RATIO.format(w=w),
            "expr": f'sum(rate(steadylink_probe_results_total{{probe="redirect",result="failed"}}[{w}]))'
                    f' / sum(rate(steadylink_probe_results_total{{probe="redirect"}}[{w}]))',
        })  # fmt: skip
        rules.append({
            "record": REQUEST_RATIO.format(w=w),
            "expr": f"sum(rate(steadylink_front_failures_total[{w}]))"
                    f" / sum(rate(steadylink_front_requests_total[{w}]))",
        })  # fmt: skip
    return rules


def alerting_rules(settings: Settings) -> list[dict[str, Any]]:
    objective = Objective.of(settings.slo)
    w, slo = settings.watch, settings.slo
    rules: list[dict[str, Any]] = []
    for share, long_s, short_s, severity in WORKBOOK:
        limit = objective.budget_share_factor(share, long_s) * objective.allowed_ratio
        long, short = _span(long_s), _span(short_s)
        for signal, ratio in (("probes", PROBE_RATIO), ("requests", REQUEST_RATIO)):
            rules.append(_alert(
                f"SteadylinkBudgetBurn_{signal}_{long}",
                f"{ratio.format(w=long)} > {limit:.8g} and {ratio.format(w=short)} > {limit:.8g}",
                severity, f"{share:.0%} of the error budget ({signal}) spent within {long}",
            ))  # fmt: skip
    err = f"{w.error_ratio_seconds}s"
    lat = f"{w.latency_window_seconds}s"
    rules += [
        _alert("SteadylinkFrontDoorDown", 'steadylink_probe_up{probe="redirect"} == 0', "page",
               f"the liveness probe failed {w.front_door_failed_seconds} seconds in a row",
               duration=f"{max(0, w.front_door_failed_seconds - 1)}s"),
        # not while the liveness probe failed within those runs: front_door_down tells that outage
        *(
            _alert(f"Steadylink{probe.capitalize()}ProbeFailing",
                   f'steadylink_probe_failed_runs{{probe="{probe}"}} >= {runs} unless on()'
                   f' min_over_time(steadylink_probe_up{{probe="redirect"}}[{runs * every:g}s]) == 0', "page",
                   f"the {probe} probe failed {runs} runs in a row")
            for probe, runs, every in (("create", w.create_probe_failed_runs, w.create_probe_seconds),
                                       ("ui", w.ui_probe_failed_runs, w.ui_probe_seconds))
        ),
        _alert("SteadylinkErrorRatio",
               f"sum(increase(steadylink_front_failures_total[{err}]))"
               f" / sum(increase(steadylink_front_requests_total[{err}])) > {w.error_ratio_max:g}"
               f" and sum(increase(steadylink_front_requests_total[{err}])) >= {w.error_ratio_min_requests}",
               "page", f"over {w.error_ratio_max:.0%} of requests failing for {err}"),
        _alert("SteadylinkRedirectLatency",
               f"quantile_over_time({slo.latency_percent / 100:g},"
               f' steadylink_probe_latency_seconds{{probe="redirect"}}[{lat}])'
               f" > {slo.redirect_latency_ms / 1000:g}", "ticket",
               f"p{slo.latency_percent:g} of redirects over {slo.redirect_latency_ms:g} ms for {lat}"),
        _alert("SteadylinkProbesStale",
               'time() - steadylink_probe_last_result_timestamp_seconds{probe="redirect"}'
               f" > {w.probes_stale_seconds:g}"
               ' or absent(steadylink_probe_up{probe="redirect"})',
               "page", "the guard's probes are not running (or the guard is gone)"),
        _alert("SteadylinkReleaseRolledBack", "increase(steadylink_rollbacks_reached_users_total[10m]) > 0",
               "page", "an automatic rollback after a release reached users"),
        _alert("SteadylinkDiskFull", f"steadylink_disk_used_ratio > {w.disk_used_max_percent / 100:g}",
               "page", f"the data folder's disk over {w.disk_used_max_percent:g} % used", duration="10s"),
        _alert("SteadylinkDatabaseDown", "steadylink_database_up == 0", "page",
               "the links database not answering", duration=f"{w.database_check_seconds:g}s"),
        _alert("SteadylinkBackupAge", f"steadylink_backup_age_seconds > {w.backup_max_age_hours * 3600:g}",
               "ticket", f"no verified backup for {w.backup_max_age_hours:g} hours"),
        _alert("SteadylinkBackupFailed", "steadylink_backup_failed == 1", "ticket",
               "the latest backup attempt failed"),
        _alert("SteadylinkLoopLag", f"steadylink_loop_lag_seconds > {w.loop_lag_max_seconds:g}", "ticket",
               "the guard's event loop lagging", duration="10s"),
    ]  # fmt: skip
    return rules


def _alert(name: str, expr: str, severity: str, summary: str, *, duration: str = "0s") -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "service": "steadylink"},
        "annotations": {"summary": summary},
    }


def render_rules(settings: Settings) -> str:
    """The rules file as YAML."""
    lines = [
        "# Written by `steadylink export prometheus-rules`; the same rules the guard runs itself.",
        "groups:",
    ]
    for name, rules in (("steadylink-slo-recording", recording_rules()),
                        ("steadylink-alerts", alerting_rules(settings))):  # fmt: skip
        lines += [f"  - name: {name}", f"    interval: {EVALUATION}", "    rules:"]
        for rule in rules:
            first = True
            for key, value in rule.items():
                lead = "      - " if first else "        "
                first = False
                if isinstance(value, dict):
                    lines.append(f"{lead}{key}:")
                    lines += [f"          {k}: {json.dumps(v)}" for k, v in value.items()]
                else:
                    lines.append(f"{lead}{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"

"""``/metrics`` on the ops port: what the watch knows, in Prometheus text.

Read at scrape time from the watcher (no per-tick bookkeeping): probe results
and latency, the front door's requests and failures, per-release figures from
HAProxy's slots, the objective, budget left and burn rates, the readings, and
every rule's alert state. ``prometheus_rules.py`` writes recording and
alerting rules over these names that match the built-in rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from steadylink.watch.watcher import Watcher

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WatchCollector(Collector):
    def __init__(self, watch: Watcher) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        yield from self._probes()
        yield from self._traffic()
        yield from self._slo()
        yield from self._readings()
        yield from self._alerts()

    def _probes(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "steadylink_probe_up", "1 if the probe's last result was good.", labels=["probe"]
        )
        latency = GaugeMetricFamily(
            "steadylink_probe_latency_seconds", "The probe's last good answer time.", labels=["probe"]
        )
        last = GaugeMetricFamily(
            "steadylink_probe_last_result_timestamp_seconds",
            "When the probe last reported.",
            labels=["probe"],
        )
        results = CounterMetricFamily(
            "steadylink_probe_results", "Probe results by outcome.", labels=["probe", "result"]
        )
        failed_runs = GaugeMetricFamily(
            "steadylink_probe_failed_runs", "The probe's failed results in a row (0 after a good one).",
            labels=["probe"],
        )
        for name, state in sorted(self.watch.probe_states.items()):
            if state.last is None:
                continue
            up.add_metric([name], float(state.last.ok))
            if state.last.latency_ms is not None:
                latency.add_metric([name], state.last.latency_ms / 1000)
            last.add_metric([name], state.last_at)
            results.add_metric([name, "ok"], state.ok_total)
            results.add_metric([name, "failed"], state.failed_total)
            failed_runs.add_metric([name], state.failed_runs)
        yield from (up, latency, last, results, failed_runs)

    def _traffic(self) -> Iterator[Metric]:
        counters = self.watch.front_counters
        requests = CounterMetricFamily("steadylink_front_requests", "Requests at the front door (HAProxy).")
        failures = CounterMetricFamily(
            "steadylink_front_failures", "Front-door answers that were 5xx (errors, timeouts, no server)."
        )
        if counters is not None:
            requests.add_metric([], counters.requests)
            failures.add_metric([], counters.failures)
        slot_requests = CounterMetricFamily(
            "steadylink_release_requests", "Requests HAProxy gave each slot.", labels=["slot", "release"]
        )
        slot_failures = CounterMetricFamily(
            "steadylink_release_failures",
            "A slot's failures: 5xx, retried away, response and connection errors.",
            labels=["slot", "release"],
        )
        slots = self.watch.sources.slot_releases()
        for slot, stats in sorted(self.watch.slot_stats.items()):
            labels = [str(slot), slots.get(slot, "")]
            slot_requests.add_metric(labels, stats.lbtot)
            slot_failures.add_metric(labels, stats.failures)
        rollbacks = CounterMetricFamily(
            "steadylink_rollbacks_reached_users", "Automatic rollbacks of releases that had reached users."
        )
        rollbacks.add_metric([], self.watch.rollbacks_seen)
        yield from (requests, failures, slot_requests, slot_failures, rollbacks)

    def _slo(self) -> Iterator[Metric]:
        status = self.watch.status()
        objective = GaugeMetricFamily("steadylink_slo_objective_ratio", "The availability objective.")
        objective.add_metric([], self.watch.objective.availability_percent / 100)
        left = GaugeMetricFamily(
            "steadylink_error_budget_remaining_ratio",
            "Share of the error budget left.",
            labels=["signal", "span"],
        )
        for budget in status["budget"]["time_based"]:
            left.add_metric(["probes", budget["span"]], budget["left_percent"] / 100)
        for budget in status["budget"]["request_based"]:
            left.add_metric(["requests", budget["span"]], budget["left_percent"] / 100)
        burn = GaugeMetricFamily(
            "steadylink_burn_rate", "Error budget burn rate now.", labels=["signal", "window"]
        )
        for key, value in status["burn_rate"].items():
            signal, window = key.split("_")
            burn.add_metric([signal, window], value)
        yield from (objective, left, burn)

    def _readings(self) -> Iterator[Metric]:
        r = self.watch.readings
        for name, help_text, value in (
            ("steadylink_disk_used_ratio", "Share of the data folder's disk in use.",
             None if r.disk_used_percent is None else r.disk_used_percent / 100),
            ("steadylink_database_up", "1 if the links database answered its last ping.",
             None if r.database_ok is None else float(r.database_ok)),
            ("steadylink_backup_age_seconds", "Age of the newest verified backup.", r.backup_age_seconds),
            ("steadylink_backup_failed", "1 while the latest backup attempt is a failed one.",
             float(r.backup_failed_reason is not None)),
            ("steadylink_loop_lag_seconds", "How late the guard loop runs a callback.", r.loop_lag_seconds),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(name, help_text)
            if value is not None:
                gauge.add_metric([], value)
            yield gauge

    def _alerts(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily(
            "steadylink_alert_firing", "1 while the rule's alert fires.", labels=["rule", "severity"]
        )
        pending = GaugeMetricFamily(
            "steadylink_alert_pending", "1 while the rule's alert is pending.", labels=["rule", "severity"]
        )
        open_alerts = dict(self.watch.book.open)
        for name, rule in sorted(self.watch.rules.items()):
            alert = open_alerts.get(name)
            firing.add_metric([name, rule.severity], float(alert is not None and alert.state == "firing"))
            pending.add_metric([name, rule.severity], float(alert is not None and alert.state == "pending"))
        yield from (firing, pending)


def render_metrics(watch: Watcher) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector(watch))
    return generate_latest(registry)

"""The exported rules are valid for Prometheus and fire like the built-in ones (promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from steadylink.settings import Settings
from steadylink.watch.prometheus_rules import render_rules

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: run scripts/setup --dev")

TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1s
tests:
  - name: the front door failing pages at its third failed second
    interval: 1s
    input_series:
      - series: 'steadylink_probe_up{probe="redirect"}'
        values: '1 1 1 0 0 0 0 1 1 1'
      - series: 'steadylink_probe_last_result_timestamp_seconds{probe="redirect"}'
        values: '0+1x9'
    alert_rule_test:
      - eval_time: 4s
        alertname: SteadylinkFrontDoorDown
        exp_alerts: []
      - eval_time: 5s
        alertname: SteadylinkFrontDoorDown
        exp_alerts:
          - exp_labels: {severity: page, service: steadylink, probe: redirect}
            exp_annotations: {summary: "the liveness probe failed 3 seconds in a row"}
      - eval_time: 8s
        alertname: SteadylinkFrontDoorDown
        exp_alerts: []
      - eval_time: 5s
        alertname: SteadylinkProbesStale
        exp_alerts: []

  - name: ten minutes of failing probes burn 2 % of the yearly budget within the hour
    interval: 1m
    input_series:
      - series: 'steadylink_probe_results_total{probe="redirect",result="ok"}'
        values: '0+60x60 3600x10 3600+60x50'
      - series: 'steadylink_probe_results_total{probe="redirect",result="failed"}'
        values: '0x60 0+60x10 600x50'
    alert_rule_test:
      - eval_time: 59m
        alertname: SteadylinkBudgetBurn_probes_1h
        exp_alerts: []
      - eval_time: 65m
        alertname: SteadylinkBudgetBurn_probes_1h
        exp_alerts:
          - exp_labels: {severity: page, service: steadylink}
            exp_annotations: {summary: "2% of the error budget (probes) spent within 1h"}
      - eval_time: 90m
        alertname: SteadylinkBudgetBurn_probes_1h
        exp_alerts: []

  - name: the create transaction pages at its second failed run, a canary socket's never
    interval: 1s
    input_series:
      - series: 'steadylink_probe_failed_runs{probe="create"}'
        values: '0x19 1x9 2x9 0x9'
      - series: 'steadylink_probe_failed_runs{probe="create@canary"}'
        values: '5x49'
      - series: 'steadylink_probe_failed_runs{probe="ui"}'
        values: '0x9 1x9 0x9 1x9 0x9'
      - series: 'steadylink_probe_up{probe="redirect"}'
        values: '1x49'
    alert_rule_test:
      - eval_time: 29s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts: []
      - eval_time: 30s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts:
          - exp_labels: {severity: page, service: steadylink, probe: create}
            exp_annotations: {summary: "the create probe failed 2 runs in a row"}
      - eval_time: 40s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts: []
      - eval_time: 35s
        alertname: SteadylinkUiProbeFailing
        exp_alerts: []

  - name: with the whole front door failing only the front door pages
    interval: 1s
    input_series:
      - series: 'steadylink_probe_failed_runs{probe="create"}'
        values: '0x9 1x9 2x9 3x9 4x29'
      - series: 'steadylink_probe_up{probe="redirect"}'
        values: '1x4 0x35 1x29'
    alert_rule_test:
      - eval_time: 39s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts: []
      - eval_time: 59s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts: []
      - eval_time: 62s
        alertname: SteadylinkCreateProbeFailing
        exp_alerts:
          - exp_labels: {severity: page, service: steadylink, probe: create}
            exp_annotations: {summary: "the create probe failed 2 runs in a row"}

  - name: a failed backup attempt is a ticket until the next one succeeds
    interval: 1s
    input_series:
      - series: 'steadylink_backup_failed'
        values: '0x9 1x9 0x9'
    alert_rule_test:
      - eval_time: 9s
        alertname: SteadylinkBackupFailed
        exp_alerts: []
      - eval_time: 10s
        alertname: SteadylinkBackupFailed
        exp_alerts:
          - exp_labels: {severity: ticket, service: steadylink}
            exp_annotations: {summary: "the latest backup attempt failed"}
      - eval_time: 20s
        alertname: SteadylinkBackupFailed
        exp_alerts: []

  - name: one stray failed request at low traffic never pages
    interval: 1s
    input_series:
      - series: 'steadylink_front_requests_total'
        values: '0+2x60'
      - series: 'steadylink_front_failures_total'
        values: '0x30 1x30'
    alert_rule_test:
      - eval_time: 35s
        alertname: SteadylinkErrorRatio
        exp_alerts: []

  - name: half the requests failing pages
    interval: 1s
    input_series:
      - series: 'steadylink_front_requests_total'
        values: '0+20x60'
      - series: 'steadylink_front_failures_total'
        values: '0x30 0+10x30'
    alert_rule_test:
      - eval_time: 45s
        alertname: SteadylinkErrorRatio
        exp_alerts:
          - exp_labels: {severity: page, service: steadylink}
            exp_annotations: {summary: "over 5% of requests failing for 10s"}
"""


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_checks_and_tests_the_exported_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render_rules(Settings()))
    (tmp_path / "tests.yml").write_text(TESTS)
    checked = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr

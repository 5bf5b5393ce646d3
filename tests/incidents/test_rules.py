"""The opening rules: pages, rollbacks after users were reached, alerts after --no-canary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from steadylink.incidents.rules import Ignore, Join, Link, Open, OpeningRules
from steadylink.watch.journal import Event, Severity

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(kind: str, *, seconds: float = 0, release: str | None = None, **body: Any) -> Event:
    return Event(1, T0 + timedelta(seconds=seconds), kind, release, Severity.INFO, kind, body)


def test_a_page_opens_and_a_ticket_does_not() -> None:
    rules = OpeningRules()
    assert isinstance(rules.decide(ev("alert.firing", severity="page", summary="5xx"), has_open=False), Open)
    assert isinstance(rules.decide(ev("alert.firing", severity="ticket"), has_open=False), Ignore)


def test_a_rollback_opens_only_when_users_were_reached() -> None:
    rules = OpeningRules()
    hurt = ev("release.rolled_back", release="r2", automatic=True, reached_users=True, step="canary")
    decision = rules.decide(hurt, has_open=False)
    assert isinstance(decision, Open) and "r2" in decision.title
    for harmless in (
        ev("release.rolled_back", reached_users=False, step="canary"),
        ev("release.rejected", release="r3", step="tests", reason="failed"),
    ):
        assert isinstance(rules.decide(harmless, has_open=False), Ignore)
    assert isinstance(rules.decide(ev("release.rejected", step="gate"), has_open=True), Link)


def test_a_second_trigger_joins_the_open_incident() -> None:
    rules = OpeningRules()
    assert isinstance(rules.decide(ev("alert.firing", severity="page"), has_open=True), Join)


def test_an_alert_after_a_no_canary_deploy_opens_within_the_window() -> None:
    rules = OpeningRules(unguarded_window=timedelta(hours=1))
    rules.decide(ev("deploy.step", release="r9", step="canary", verdict="skipped"), has_open=False)
    decision = rules.decide(ev("alert.firing", seconds=600, severity="ticket", summary="p99"), has_open=False)
    assert isinstance(decision, Open) and "no-canary" in decision.title
    later = rules.decide(ev("alert.firing", seconds=7200, severity="ticket"), has_open=False)
    assert isinstance(later, Ignore)

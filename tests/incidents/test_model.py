"""Statuses move forward; going back is refused, except a reopen out of resolved."""

from __future__ import annotations

import pytest

from steadylink.errors import InvalidInput
from steadylink.incidents.model import (
    Status,
    clean_text,
    clean_title,
    parse_severity,
    parse_status,
    plan_transition,
)


def test_forward_moves_may_skip_steps() -> None:
    assert plan_transition(Status.INVESTIGATING, Status.MONITORING).to == Status.MONITORING
    assert not plan_transition(Status.IDENTIFIED, Status.RESOLVED).is_reopen


@pytest.mark.parametrize(
    ("current", "wanted"),
    [(Status.MONITORING, Status.INVESTIGATING), (Status.IDENTIFIED, Status.IDENTIFIED)],
)
def test_going_back_or_standing_still_is_refused(current: Status, wanted: Status) -> None:
    with pytest.raises(InvalidInput) as caught:
        plan_transition(current, wanted)
    assert caught.value.field == "status"


def test_leaving_resolved_is_a_reopen() -> None:
    transition = plan_transition(Status.RESOLVED, Status.INVESTIGATING)
    assert transition.is_reopen and transition.to == Status.INVESTIGATING


def test_bad_words_are_refused_with_the_field() -> None:
    for call, field in (
        (lambda: parse_status("fixed"), "status"),
        (lambda: parse_severity("SEV9"), "severity"),
        (lambda: clean_title("   "), "title"),
        (lambda: clean_text("x" * 1_000_000), "text"),
    ):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field
    assert parse_severity("sev1") == 1 and parse_status(" Resolved ") == Status.RESOLVED

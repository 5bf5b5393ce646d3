from datetime import UTC, datetime

import pytest

from steadylink.errors import InvalidInput
from steadylink.watch.durations import parse_since, parse_span

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172_800), ("30", 30)]
)
def test_spans(text: str, seconds: float) -> None:
    assert parse_span(text, field="for") == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1h", "1y", "soon", "401d"])
def test_bad_spans_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_span(text, field="for")
    assert refused.value.field == "for"


def test_since_takes_a_span_or_an_iso_time() -> None:
    assert parse_since("1h", now=NOW) == datetime(2026, 11, 30, 11, tzinfo=UTC)
    assert parse_since("2026-11-29T08:00Z", now=NOW) == datetime(2026, 11, 29, 8, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="since must be"):
        parse_since("yesterday", now=NOW)

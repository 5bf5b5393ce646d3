"""Spans as people type them: ``90s``, ``15m``, ``1h``, ``2d`` (and a bare number of seconds)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from steadylink.errors import InvalidInput

_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
MAX_SECONDS = 400 * 86_400


def parse_span(text: str, *, field: str) -> float:
    """Seconds in ``text``; InvalidInput naming ``field`` for anything else."""
    match = _SPAN.fullmatch(text or "")
    if not match:
        raise InvalidInput(f"{field} must be a span such as 90s, 15m, 1h or 2d, not {text!r}.", field=field)
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not 0 < seconds <= MAX_SECONDS:
        raise InvalidInput(f"{field} must be more than 0 and at most 400 days.", field=field)
    return seconds


def parse_since(text: str, *, now: datetime, field: str = "since") -> datetime:
    """``1h`` (that long ago) or an ISO time such as 2026-11-30T12:00Z."""
    try:
        return now - timedelta(seconds=parse_span(text, field=field))
    except InvalidInput:
        pass
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field} must be a span such as 1h or 2d, or an ISO time, not {text!r}.", field=field
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=now.tzinfo)

"""Links of every state that must not redirect, put into staging's copy of the store.

The differential check compares sampled real links, and a store may hold no
expired, disabled or used-up link to sample; these fixtures make sure the
``lifecycle`` check sees each state however the data looks. They are written
with the guard's own code into the copy before the candidate migrates it, like
the stage's key, and never reach production.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from steadylink.clock import Clock, FakeClock
from steadylink.links.cache import location_of
from steadylink.links.codes import SystemRandom
from steadylink.links.model import LinkChanges, NewLink
from steadylink.links.plain import is_plain
from steadylink.links.service import change_link, create_link
from steadylink.links.store import Store
from steadylink.settings import Settings

EXPIRED, NOT_FOUND = 410, 404


def locations_before(store: Store, codes: Iterable[str]) -> dict[str, str]:
    """Where each plain link among ``codes`` leads, read before the candidate migrates the copy.

    The ``data`` check holds the migrated copy to it: a migration that rewrites or loses
    targets makes both releases answer alike, wrongly, and only this reference shows it.
    """
    before: dict[str, str] = {}
    for code in dict.fromkeys(codes):
        link = store.get_link(code)
        if link is not None and is_plain(link) and link.url is not None:
            before[code] = location_of(link.url)
    return before


def add_stage_fixtures(store: Store, settings: Settings, clock: Clock) -> dict[str, int]:
    """Make an expired, a disabled and a used-up link; each code with the status it must get."""
    now, rng = clock.now(), SystemRandom()

    def make(new: NewLink, at: Clock = clock) -> str:
        return create_link(store=store, settings=settings, clock=at, rng=rng, new=new).code

    expired = make(
        NewLink(url="https://example.com/stage/expired", expires_at=now - timedelta(days=1)),
        at=FakeClock(now - timedelta(days=2)),  # made while its expiry was still ahead
    )
    disabled = make(NewLink(url="https://example.com/stage/disabled"))
    off = LinkChanges(is_disabled=True)
    change_link(store=store, settings=settings, clock=clock, code=disabled, changes=off)
    used_up = make(NewLink(url="https://example.com/stage/used-up", max_visits=1))
    if not store.take_limited_visit(used_up):
        raise RuntimeError(f"the stage's used-up link {used_up} could not take its one visit")
    return {expired: EXPIRED, disabled: NOT_FOUND, used_up: EXPIRED}

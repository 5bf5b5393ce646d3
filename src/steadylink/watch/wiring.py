"""How ``steadylink up`` puts the watch together around its guard, store and journal."""

from __future__ import annotations

from pathlib import Path

from steadylink.edge.figures import ServerStats
from steadylink.links.sql_store import SqlStore
from steadylink.notify.base import build_channels
from steadylink.notify.dispatch import Dispatcher
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.watch.journal import Journal
from steadylink.watch.probe_setup import ensure_probe_identity
from steadylink.watch.traffic import SHOW_FRONTEND_STATS, FrontCounters, parse_front_counters
from steadylink.watch.watcher import Sources, Watcher


def check_channels(settings: Settings) -> None:
    """Refuse a malformed channel URL or key before anything starts (ConfigError names the key)."""
    build_channels(settings)


def watcher_for_guard(settings: Settings, guard: Guard, store: SqlStore, journal: Journal) -> Watcher:
    identity = ensure_probe_identity(store, data_dir=guard.data_dir, clock=guard.clock)
    dispatcher = Dispatcher(
        build_channels(settings), record=journal.append, max_attempts=settings.notify.max_attempts
    )

    def server_stats() -> dict[int, ServerStats]:
        edge = guard.edge
        return edge.runtime.server_stats() if edge is not None else {}

    def front_counters() -> FrontCounters | None:
        edge = guard.edge
        return parse_front_counters(edge.runtime.run(SHOW_FRONTEND_STATS)) if edge is not None else None

    def canary_sockets() -> list[Path]:
        state = guard.state
        return [
            guard.edge_config.slot_socket(n)
            for n, entry in list(state.slots.items())
            if entry.release != state.serving and state.weights.get(n, 0) > 0
        ]

    sources = Sources(
        server_stats=server_stats,
        front_counters=front_counters,
        canary_sockets=canary_sockets,
        ping_database=store.ping,
        serving=lambda: guard.state.serving,
        slot_releases=lambda: {n: e.release for n, e in list(guard.state.slots.items())},
    )
    return Watcher(
        settings, journal=journal, identity=identity, sources=sources, dispatcher=dispatcher,
        clock=guard.clock,
    )  # fmt: skip

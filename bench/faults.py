"""The fault table: what each fault costs users, measured under a checked load.

    .venv/bin/python bench/faults.py [--during 15] [--rate 100] [--only NAME] [--keep DIR]

Runs each fault of the fault tier (``tests/faults/scenarios.py``, the same
code ``tests/e2e/test_faults.py`` asserts on) against a real ``steadylink
serve`` and prints one row per fault:

    fault | failed/total | recovery s | acknowledged links lost | visits lost | what users saw

``recovery s`` is the time from the fault's end to the first create that
succeeded again ("-": nothing but redirects was asked, nothing failed).
PostgreSQL is the local server (``STEADYLINK_TEST_POSTGRES``), blackholed
through a proxy this script controls; the disk is a small tmpfs (needs
root); Redis is one of its own on a free port. Every process it starts is
stopped at the end; ``--keep`` keeps the servers' logs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults import scenarios  # noqa: E402
from tests.faults.scenarios import SLOW_FAILURE_SECONDS, Row  # noqa: E402

HEADER = [
    "fault", "failed/total", "slowest failure s", "recovery s", "acknowledged links lost", "visits lost",
    "what users saw",
]


def postgres(tmp: Path, during: float, rate: float) -> Row:
    with scenarios.postgres_blackholed(tmp) as (server, proxy):
        return scenarios.run_fault(
            "PostgreSQL blackholed",
            server,
            inject=proxy.blackhole,
            heal=proxy.restore,
            during=during,
            rate=rate,
        )


def disk(tmp: Path, during: float, rate: float) -> Row:
    with scenarios.disk_to_fill(tmp) as server:
        return scenarios.run_fault(
            "data dir's disk full", server, inject=lambda: scenarios.fill_disk(server),
            heal=lambda: scenarios.free_disk(server), during=during, rate=rate,
        )  # fmt: skip


def redis(tmp: Path, during: float, rate: float) -> Row:
    with scenarios.redis_of_our_own(tmp) as (server, process):
        return scenarios.run_fault(
            "Redis stopped (SIGSTOP)", server, inject=lambda: process.send_signal(signal.SIGSTOP),
            heal=lambda: process.send_signal(signal.SIGCONT), during=during, rate=rate,
        )  # fmt: skip


FAULTS: dict[str, Callable[[Path, float, float], Row]] = {"postgres": postgres, "disk": disk, "redis": redis}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--during", type=float, default=15.0, help="seconds each fault lasts")
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second, in all")
    parser.add_argument("--only", choices=sorted(FAULTS), action="append")
    parser.add_argument("--keep", type=Path, help="keep the servers' logs in this directory")
    args = parser.parse_args()
    rows = []
    for name in args.only or list(FAULTS):
        tmp = Path(tempfile.mkdtemp(prefix=f"steadylink-faults-{name}-", dir=args.keep))
        row = FAULTS[name](tmp, args.during, args.rate)
        rows.append(row)
        extra = []
        if row.failed_redirects:
            extra.append(f"{len(row.failed_redirects)} redirects of held links failed")
        if row.slow_failures:
            extra.append(f"{len(row.slow_failures)} failures took over {SLOW_FAILURE_SECONDS} s")
        if row.tally.leaks():
            extra.append(f"{len(row.tally.leaks())} answers held internal text")
        print(f"{row.fault}: done{' - ' + '; '.join(extra) if extra else ''}", flush=True)
    print()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    main()

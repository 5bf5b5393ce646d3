"""What password guessing costs everyone else: cached-redirect latency while clients guess.

    .venv/bin/python bench/password_guessing.py [--seconds 10] [--guessers 4] [--rate 100]

Starts a real ``steadylink serve`` (one worker, the unit a front door spreads
load over), makes a plain link and looks at it once (held in memory), and a
password-protected link. Then, in three phases of ``--seconds`` each, one
client follows the plain link at a paced ``--rate`` and times every redirect:

- quiet: nobody else;
- guessing, default limits: ``--guessers`` clients post wrong passwords to
  the protected link as fast as they can, each request from a new
  ``X-Forwarded-For`` address (so a per-client limit never sees a repeat);
- guessing, no per-link limit (``limits.password_attempts_per_minute = 0``):
  every guess is hashed — the worst case for the CPU.

It prints p50/p99/max of the redirects in each phase, their ratio to the
quiet phase measured in the same run, and what the guessers got. The
argon2 checks run in threads beside the event loop, a few at a time, and
a per-link count shared by all workers refuses guesses past the limit before
any hashing, so the redirects of the same worker should barely notice.
"""

from __future__ import annotations

import argparse
import collections
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.faults.scenarios import serving


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _redirects(base_url: str, code: str, url: str, seconds: float, rate: float) -> tuple[list[float], int]:
    """Paced redirects of one held link; their latencies (ms) and how many went wrong."""
    latencies, wrong = [], 0
    with httpx.Client(base_url=base_url, timeout=5) as client:
        client.get(f"/{code}")  # connection open before timing
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = start + sent / rate
            if now < due:
                time.sleep(due - now)
            began = time.perf_counter()
            try:
                answer = client.get(f"/{code}")
                ok = answer.status_code == 302 and answer.headers.get("location") == url
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - began) * 1000)
            wrong += not ok
            sent += 1
    return latencies, wrong


def _guess(base_url: str, code: str, stop: threading.Event, seen: collections.Counter[int]) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            address = f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
            try:
                answer = client.post(
                    f"/{code}", data={"password": secrets.token_hex(6)}, headers={"X-Forwarded-For": address}
                )
                seen[answer.status_code] += 1
            except httpx.HTTPError:
                seen[0] += 1


def phase(
    base_url: str, links: dict[str, str], *, guessers: int, seconds: float, rate: float
) -> dict[str, object]:
    stop = threading.Event()
    seen: collections.Counter[int] = collections.Counter()
    threads = [
        threading.Thread(target=_guess, args=(base_url, links["protected"], stop, seen), daemon=True)
        for _ in range(guessers)
    ]
    for thread in threads:
        thread.start()
    if guessers:
        time.sleep(1.0)  # the guessing is under way before the timing starts
    latencies, wrong = _redirects(base_url, links["plain"], links["plain_url"], seconds, rate)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    return {
        "p50": statistics.median(latencies), "p99": _percentile(latencies, 0.99), "max": max(latencies),
        "redirects": len(latencies), "wrong": wrong, "guesses": dict(sorted(seen.items())),
    }  # fmt: skip


def _links(base_url: str) -> dict[str, str]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        plain_url = f"https://example.com/held?{secrets.token_hex(4)}"
        plain = client.post("/api/v1/links", json={"url": plain_url}).json()["code"]
        assert client.head(f"/{plain}").status_code == 302  # held in memory from here on
        protected = client.post(
            "/api/v1/links", json={"url": "https://example.com/secret", "password": "correct horse"}
        ).json()["code"]
    return {"plain": plain, "plain_url": plain_url, "protected": protected}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--guessers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="redirects a second, paced")
    args = parser.parse_args()
    rows = []
    for title, attempts, guessers in (
        ("quiet", "10", 0),
        (f"{args.guessers} guessing, default limits", "10", args.guessers),
        (f"{args.guessers} guessing, no per-link limit", "0", args.guessers),
    ):
        with tempfile.TemporaryDirectory(prefix="steadylink-guessing-") as tmp:
            env = {"STEADYLINK_LIMITS_PASSWORD_ATTEMPTS_PER_MINUTE": attempts}
            with serving(Path(tmp), data_dir=Path(tmp) / "data", env=env) as server:
                links = _links(server.base_url)
                rows.append((title, phase(server.base_url, links, guessers=guessers, seconds=args.seconds,
                                          rate=args.rate)))  # fmt: skip
        print(f"{title}: done", flush=True)
    quiet_p99 = float(rows[0][1]["p99"])  # type: ignore[arg-type]
    print()
    print("| phase | redirects (wrong) | p50 ms | p99 ms | max ms | p99 vs quiet | guesses by status |")
    print("|---|---|---|---|---|---|---|")
    for title, row in rows:
        p99 = float(row["p99"])  # type: ignore[arg-type]
        print(
            f"| {title} | {row['redirects']} ({row['wrong']}) | {row['p50']:.1f} | {p99:.1f} "
            f"| {row['max']:.1f} "
            f"| {p99 / quiet_p99:.1f}x | {row['guesses'] or '-'} |"
        )


if __name__ == "__main__":
    main()

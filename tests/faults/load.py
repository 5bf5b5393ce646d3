"""A checked load: every answer is checked, every acknowledged link and visit accounted for.

Threads send a mix a user population sends: redirects of links created
before the load (the ``Location`` must be exactly the link's URL), creations
(a 201 is an acknowledged link, verified at the end), link pages and uploads
(they read or write the store). Every answer that is not the right one is
kept with its status, time and body, so a fault's table can say what users
saw and a test can assert that no answer held a stack trace, SQL, driver
text or somebody else's data.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

# Text that must never reach a client: stack traces, SQL, driver and library names.
LEAKS = ("Traceback", "SELECT ", "INSERT ", "UPDATE ", "sqlalche", "psycopg", "sqlite3", 'File "', ":5432")


@dataclass(frozen=True)
class Failure:
    kind: str
    at: float  # seconds since the load started
    status: int  # 0: no answer (transport error or client timeout)
    seconds: float
    body: str
    code: str = ""  # the held link a redirect asked for


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # code -> url
    visits: Counter[str] = field(default_factory=Counter)  # code -> 302s to GETs
    successes: list[tuple[str, float]] = field(default_factory=list)  # (kind, at)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def leaks(self) -> list[Failure]:
        return [f for f in self.failures if any(mark in f.body for mark in LEAKS)]

    def foreign(self, urls: set[str]) -> list[Failure]:
        """Failed answers that carry a URL some other request created (another user's data)."""
        return [f for f in self.failures if any(url in f.body for url in urls)]

    def first_success_after(self, kind: str, moment: float) -> float | None:
        times = [at for k, at in self.successes if k == kind and at >= moment]
        return min(times) if times else None

    def users_saw(self) -> str:
        seen: Counter[str] = Counter()
        for failure in self.failures:
            message = answer_message(failure.body)
            seen[f"{failure.kind}: {failure.status or 'no answer'} {message[:70]}"] += 1
        return "; ".join(f"{text} (x{n})" for text, n in seen.most_common(3)) or "nothing wrong"


def answer_message(body: str) -> str:
    """The sentence a failed answer told its user: JSON's ``message``, an error page's text."""
    text = body.strip()
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("message", text))
        except ValueError:
            return text
    page = re.search(r'<h1 id="error-title">(.*?)</h1>\s*<p>(.*?)</p>', text, re.S)
    if page:
        return f"page: {html.unescape(page.group(2)).strip()}"
    return " ".join(text.split())


class CheckedLoad:
    """``threads`` clients in a loop, about ``rate`` requests a second in all."""

    def __init__(
        self, base_url: str, held: dict[str, str], *, rate: float = 100, threads: int = 4,
        mix: dict[str, int] | None = None, timeout: float = 5.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url
        self.held = held
        self.rate = rate
        self.threads = threads
        self.mix = mix or {"redirect": 6, "create": 2, "page": 1, "upload": 1}
        self.timeout = timeout
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> Tally:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)
        return self.tally

    def now(self) -> float:
        return time.monotonic() - self.started

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        kinds = [k for k, weight in self.mix.items() for _ in range(weight)]
        pause = self.threads / self.rate
        n = 0
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                n += 1
                kind = rng.choice(kinds)
                self._one(client, kind, f"{index}-{n}", rng)
                time.sleep(pause)

    def _one(self, client: httpx.Client, kind: str, tag: str, rng: random.Random) -> None:
        at = self.now()
        started = time.monotonic()
        code = rng.choice(list(self.held)) if self.held else ""
        url = f"https://example.com/load/{tag}"
        try:
            if kind == "redirect":
                response = client.get(f"/{code}")
                ok = response.status_code == 302 and response.headers.get("location") == self.held[code]
            elif kind == "create":
                response = client.post("/api/v1/links", json={"url": url})
                ok = response.status_code == 201 and response.json().get("url") == url
            elif kind == "page":
                response = client.get(f"/s/{code}", headers={"accept": "text/html"})
                ok = response.status_code == 200
            else:
                files = {"file": (f"{tag}.txt", f"upload {tag}".encode(), "text/plain")}
                response = client.post("/api/v1/files", files=files)
                ok = response.status_code == 201
        except httpx.HTTPError as exc:
            failure = Failure(kind, at, 0, time.monotonic() - started, type(exc).__name__, code)
            self._record(kind, at, failure)
            return
        seconds = time.monotonic() - started
        with self._lock:
            self.tally.sent[kind] += 1
            if ok:
                self.tally.successes.append((kind, at))
                if kind == "redirect":
                    self.tally.visits[code] += 1
                elif kind == "create":
                    self.tally.acknowledged[response.json()["code"]] = url
            else:
                self.tally.failures.append(
                    Failure(kind, at, response.status_code, seconds, response.text[:2000])
                )

    def _record(self, kind: str, at: float, failure: Failure) -> None:
        with self._lock:
            self.tally.sent[kind] += 1
            self.tally.failures.append(failure)

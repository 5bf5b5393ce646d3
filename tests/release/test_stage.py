"""The staging smoke suite against fake releases served through httpx.MockTransport."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from steadylink.clock import FakeClock, SystemClock
from steadylink.links.codes import SystemRandom
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.model import NewLink
from steadylink.links.service import create_key, create_link
from steadylink.links.sql_store import open_store
from steadylink.release.stage import (
    STAGE_CHECKS,
    CheckOutcome,
    HealthCheck,
    StageCheck,
    StageCheckRegistry,
    StageContext,
    StageReport,
    run_stage,
)
from steadylink.release.stage_fixtures import add_stage_fixtures, locations_before
from steadylink.settings import ReleaseSettings, load_settings
from steadylink.types import Role

API_KEY = "sk_stage_test"
SAMPLE = [f"code{i:03d}" for i in range(40)]
FIXTURES = {"gone1": 410, "off1": 404, "used1": 410}
# where the sample led before the candidate's migrations (the fake releases start there)
BEFORE = {code: f"https://example.org/{code}" for code in SAMPLE}


@dataclass
class FakeRelease:
    """Answers like steadylink's web app does; each knob is one kind of bad release."""

    clock: FakeClock
    delay_ms: float = 2.0
    links: dict[str, str] = field(
        default_factory=lambda: {code: f"https://example.org/{code}" for code in SAMPLE}
    )
    files: dict[str, bytes] = field(default_factory=dict)
    redirect_status: int = 302
    health_status: int = 200
    create_status: int = 201
    drop_fields: tuple[str, ...] = ()
    differs: frozenset[str] = frozenset()
    upload_inline: bool = False
    upload_truncated: bool = False
    not_found_status: int = 404
    # "METHOD /path" (or "METHOD /prefix*") -> the status a broken page or route answers instead
    broken: dict[str, int] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    home_loads: str = "/static/app.css"
    missing_static: bool = False
    edit_ignored: bool = False
    drops_query: bool = False  # new and changed links lose their query string
    location_prefix: str = ""  # put before every Location (a release that breaks them)
    short_host: str = "stage"
    reads_wrong: bool = False  # an API read answers the URL with a slash added
    prefix: str = "new"  # of the codes it makes: two releases sharing one store make different ones
    counts_visits: bool = True
    visits: dict[str, int] = field(default_factory=dict)
    counter: int = 0
    # links that must not redirect, and why: "disabled", "expired", or a visit limit
    stopped: dict[str, str | int] = field(default_factory=dict)
    # "disabled", "expired", "limit": a state this release no longer honours
    ignores: frozenset[str] = frozenset()
    taken: dict[str, int] = field(default_factory=dict)  # visits of limited links

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle), base_url="http://stage")

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(self.delay_ms / 1000)
        path, method = request.url.path, request.method
        for route, status in self.broken.items():  # "GET /s/*": every path that starts so
            asked = f"{method} {path}"
            if asked == route or (route.endswith("*") and asked.startswith(route[:-1])):
                return httpx.Response(status, text="Internal Server Error")
        if path in ("/healthz", "/readyz"):
            return httpx.Response(self.health_status, json={"status": "ok"})
        if path in ("/api/openapi.json", "/api/docs"):
            return httpx.Response(200, json={})
        if path.startswith("/api/"):
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                return httpx.Response(401, json={"error": "unauthorized"})
            if path == "/api/v1/links" and method == "POST":
                body = json.loads(request.content)
                return self.create(body["url"], body.get("password"), body.get("max_visits"))
            if path == "/api/v1/files" and method == "POST":
                return self.upload(request)
            if path in ("/api/v1/links", "/api/v1/whoami"):
                return httpx.Response(200, json={})
            if path.startswith("/api/v1/links/"):
                return self.api_link(request, path.removeprefix("/api/v1/links/"))
            return httpx.Response(404, json={"error": "not_found"})
        if path == "/":
            return httpx.Response(200, text=f'<link rel="stylesheet" href="{self.home_loads}">')
        if path.startswith("/static/"):
            return httpx.Response(404 if self.missing_static else 200, text="body {}")
        if path.startswith("/s/"):
            return httpx.Response(200 if path.removeprefix("/s/") in self.links else 404, text="<p>stats</p>")
        code = path.removeprefix("/")
        if code in self.passwords:
            if method != "POST":
                return httpx.Response(200, text='<input type="password" name="password">')
            right = request.content == f"password={self.passwords[code]}".encode()
            return httpx.Response(303, headers={"Location": self.links[code]}) if right else httpx.Response(403)
        return self.resolve(code)

    def api_link(self, request: httpx.Request, code: str) -> httpx.Response:
        if code not in self.links:
            return httpx.Response(404, json={"error": "not_found"})
        if request.method == "DELETE":
            del self.links[code]
            return httpx.Response(204)
        if request.method == "PATCH" and not self.edit_ignored:
            changes = json.loads(request.content)
            if "is_disabled" in changes:
                self.stopped.pop(code, None)
                if changes["is_disabled"]:
                    self.stopped[code] = "disabled"
                return httpx.Response(200, json={"code": code, "url": self.links[code]})
            url = changes["url"].strip()
            if not is_target(url):
                return httpx.Response(422, json={"error": "invalid", "field": "url"})
            self.links[code] = self.stored(url)
        url = self.links[code] + ("/" if self.reads_wrong and request.method == "GET" else "")
        return httpx.Response(200, json={"code": code, "url": url, "visits": self.visits.get(code, 0)})

    def create(self, url: str, password: str | None = None, max_visits: int | None = None) -> httpx.Response:
        url = url.strip()
        if not is_target(url):
            return httpx.Response(422, json={"error": "invalid", "field": "url"})
        self.counter += 1
        code = f"{self.prefix}{self.counter}"
        self.links[code] = url = self.stored(url)
        if password is not None:
            self.passwords[code] = password
        if max_visits is not None:
            self.stopped[code] = max_visits
        body = {
            "code": code,
            "short_url": f"http://{self.short_host}/{code}",
            "url": url,
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": None,
            "max_visits": None,
            "visits": 0,
        }
        for name in self.drop_fields:
            body.pop(name)
        return httpx.Response(self.create_status, json=body)

    def stored(self, url: str) -> str:
        return url.split("?")[0] if self.drops_query else url

    def upload(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        assert b'name="file"' in body
        content = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
        self.counter += 1
        code = f"file{self.counter}"
        self.files[code] = content[:-1] if self.upload_truncated else content
        return httpx.Response(201, json={"code": code, "short_url": f"http://stage/{code}"})

    def resolve(self, code: str) -> httpx.Response:
        if code in self.files:
            kind = "inline" if self.upload_inline else "attachment"
            disposition = f'{kind}; filename="stage-check.txt"'
            return httpx.Response(200, content=self.files[code], headers={"Content-Disposition": disposition})
        if code not in self.links:
            return httpx.Response(self.not_found_status, json={"error": "not_found"})
        if self.redirect_status >= 500:
            return httpx.Response(self.redirect_status, text="Internal Server Error")
        why = self.stopped.get(code)
        if why == "disabled" and "disabled" not in self.ignores:
            return httpx.Response(404, json={"error": "not_found"})
        if why == "expired" and "expired" not in self.ignores:
            return httpx.Response(410, json={"error": "gone"})
        if isinstance(why, int) and "limit" not in self.ignores:
            if self.taken.get(code, 0) >= why:  # counted in the store before the redirect
                return httpx.Response(410, json={"error": "gone"})
            self.taken[code] = self.taken.get(code, 0) + 1
        url = quote(self.links[code], safe=":/?#[]@!$&'()*+,;=%") + ("?v2" if code in self.differs else "")
        url = self.location_prefix + url
        if self.counts_visits:
            self.visits[code] = self.visits.get(code, 0) + 1
        return httpx.Response(self.redirect_status, headers={"Location": url})


def is_target(url: str) -> bool:
    """The app's target rules, roughly."""
    return re.fullmatch(r"https?://[^\s@]+", url) is not None


def stage(
    candidate: FakeRelease, current: FakeRelease | None, *, lines: list[str] | None = None
) -> StageReport:
    # the guard's fixtures in the copy: links in each state that must not redirect
    candidate.links.update({code: f"https://example.org/{code}" for code in FIXTURES})
    candidate.stopped.update({"gone1": "expired", "off1": "disabled", "used1": 1})
    candidate.taken["used1"] = 1
    if current is not None:  # both releases read the same copy of the store
        current.links, current.passwords, current.prefix = candidate.links, candidate.passwords, "cur"
        current.stopped, current.taken = candidate.stopped, candidate.taken
    return run_stage(
        candidate.client(),
        current.client() if current else None,
        sample_codes=SAMPLE,
        api_key=API_KEY,
        # one at a time: the fake releases advance one shared fake clock per request
        settings=ReleaseSettings(stage_sample=len(SAMPLE), stage_concurrency=1),
        progress=(lines if lines is not None else []).append,
        clock=candidate.clock,
        rng=random.Random(3),
        pause=candidate.clock.advance,
        expected=FIXTURES,
        before_migration=BEFORE,
    )


def by_name(report: StageReport) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.passed, check.detail) for check in report.checks}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_good_release_passes_every_check(clock: FakeClock) -> None:
    lines: list[str] = []
    report = stage(FakeRelease(clock), FakeRelease(clock), lines=lines)
    assert report.passed, report.checks
    assert [c.name for c in report.checks] == list(STAGE_CHECKS.names)
    assert report.summary() == "stage passed: 14 checks"
    assert len(lines) == 14 and lines[0].startswith("stage: health passed")
    figures = {c.name: c.figures for c in report.checks}
    assert figures["differential"] == {"compared": 40, "planned": 40, "mismatches": 0, "power": 0.331}
    assert figures["latency"]["candidate_median_ms"] == pytest.approx(2.0)
    # The latency check reuses the differential's answers: it costs no requests.
    durations = {c.name: c.duration_s for c in report.checks}
    assert durations["differential"] == pytest.approx(40 * 2 * 0.002)
    assert durations["latency"] == 0.0


def test_a_first_release_has_nothing_to_compare_with(clock: FakeClock) -> None:
    report = stage(FakeRelease(clock), None)
    assert report.passed
    assert by_name(report)["differential"] == (True, "skipped: no current release to compare with")


BadRelease = Callable[[FakeRelease], None]


@pytest.mark.parametrize(
    ("label", "break_release", "failing", "in_detail"),
    [
        ("json.loads on the redirect path", lambda r: setattr(r, "redirect_status", 500),
         {"resolve", "visits", "pages", "lifecycle", "differential", "writes"}, "answered 500"),
        ("readiness broken", lambda r: setattr(r, "health_status", 503),
         {"health"}, "GET /healthz answered 503"),
        ("create broken", lambda r: setattr(r, "create_status", 500),
         {"create", "resolve", "visits", "password", "edit", "lifecycle", "writes"},
         "POST /api/v1/links answered 500"),
        ("a field dropped from the API", lambda r: setattr(r, "drop_fields", ("expires_at",)),
         {"create", "resolve", "visits", "edit", "writes"}, "lacks expires_at"),
        ("redirects became 301", lambda r: setattr(r, "redirect_status", 301),
         {"resolve", "visits", "pages", "lifecycle", "differential", "writes"}, "expected 302"),
        ("files served inline", lambda r: setattr(r, "upload_inline", True),
         {"upload"}, "Content-Disposition 'inline"),
        ("files truncated", lambda r: setattr(r, "upload_truncated", True),
         {"upload"}, "returned 55 bytes that differ from the 56 uploaded"),
        ("unknown codes crash", lambda r: setattr(r, "not_found_status", 500),
         {"not_found", "pages"}, "answered 500, expected 404"),
        ("the home page's template broken", lambda r: r.broken.update({"GET /": 500}),
         {"pages"}, "GET / answered 500 (current: 200)"),
        ("link pages (stats) broken", lambda r: r.broken.update({"GET /s/*": 500}),
         {"pages"}, "GET /s/code000 answered 500 (current: 200)"),
        ("the stylesheet renamed but not its link", lambda r: setattr(r, "home_loads", "/static/app2.css")
         or setattr(r, "missing_static", True),
         {"pages"}, "GET /static/app2.css (loaded by the home page) answered 404"),
        ("the API's list broken", lambda r: r.broken.update({"GET /api/v1/links": 500}),
         {"pages"}, "GET /api/v1/links?limit=5 answered 500"),
        ("the API docs broken", lambda r: r.broken.update({"GET /api/openapi.json": 500}),
         {"pages"}, "GET /api/openapi.json answered 500"),
        ("a password link opens with any password", lambda r: r.broken.update({"POST /new3": 303}),
         {"password"}, "with a wrong password answered 303, expected 403"),
        ("a password link's page broken", lambda r: r.broken.update({"GET /new3": 500}),
         {"password", "pages"}, "(a password link, in a browser) answered 500"),
        ("a change through the API not kept", lambda r: setattr(r, "edit_ignored", True),
         {"edit", "lifecycle", "writes"}, "after it was changed to"),
        ("deleting a link broken", lambda r: r.broken.update({"DELETE /api/v1/links/*": 500}),
         {"edit"}, "DELETE /api/v1/links/new1 answered 500"),
        ("new links lose their query string", lambda r: setattr(r, "drops_query", True),
         {"writes"}, "create 'https://example.com/path?q=1&r=two#frag': 201 'https://example.com/path'"),
        ("expired links redirect", lambda r: setattr(r, "ignores", frozenset({"expired"})),
         {"lifecycle"}, "/gone1 answered 302, expected 410"),
        ("disabled links redirect", lambda r: setattr(r, "ignores", frozenset({"disabled"})),
         {"lifecycle"}, "/off1 answered 302, expected 404"),
        ("visit limits no longer hold", lambda r: setattr(r, "ignores", frozenset({"limit"})),
         {"lifecycle"}, "(limited to 2 visits) answered [302, 302, 302], expected [302, 302, 410]"),
        ("short links made with the wrong host", lambda r: setattr(r, "short_host", "localhost"),
         {"writes"}, "short_url = 'http://localhost/{code}' (current: 'http://stage/{code}')"),
        ("an API read answers another URL", lambda r: setattr(r, "reads_wrong", True),
         {"pages", "edit"}, "GET /api/v1/links/code000 reads url = 'https://example.org/code000/' (current: "),
        ("visits no longer counted", lambda r: setattr(r, "counts_visits", False),
         {"visits"}, "3 visits to /new1 were not in its stats after 10 s (0 counted)"),
    ],
)  # fmt: skip
def test_each_kind_of_bad_release_fails_its_check_and_the_others_still_run(
    clock: FakeClock, label: str, break_release: BadRelease, failing: set[str], in_detail: str
) -> None:
    candidate = FakeRelease(clock)
    break_release(candidate)
    report = stage(candidate, FakeRelease(clock))
    assert not report.passed, label
    assert set(report.failed) == failing, label
    assert len(report.checks) == len(STAGE_CHECKS.names)
    assert any(in_detail in check.detail for check in report.checks), report.checks


@pytest.mark.parametrize("prefix", ["https://example.org:port", "javascript:"])
def test_a_location_httpx_cannot_read_is_a_difference_not_a_crash(clock: FakeClock, prefix: str) -> None:
    report = stage(FakeRelease(clock, location_prefix=prefix), FakeRelease(clock))
    assert {"resolve", "differential", "writes"} <= set(report.failed)
    detail = by_name(report)["differential"][1]
    assert "(no answer httpx can read: " in detail and "(current: 302 to https://example.org/code" in detail


def test_a_change_the_deployer_expects_is_recorded_and_passes_but_nothing_else_does(clock: FakeClock) -> None:
    candidate = FakeRelease(clock, drops_query=True, differs=frozenset(SAMPLE[:5]), health_status=503)
    current = FakeRelease(clock)
    current.links, current.passwords, current.prefix = candidate.links, candidate.passwords, "cur"
    current.stopped, current.taken = candidate.stopped, candidate.taken
    report = run_stage(
        candidate.client(), current.client(), sample_codes=SAMPLE, api_key=API_KEY,
        settings=ReleaseSettings(stage_sample=len(SAMPLE), stage_concurrency=1), clock=clock,
        expected_changes=("writes", "differential"),
    )  # fmt: skip
    assert report.failed == ["health"]  # only the comparisons were expected to differ
    for name in ("writes", "differential"):
        passed, detail = by_name(report)[name]
        assert passed and detail.startswith("differences the deployer expected: "), detail


def test_a_migration_that_rewrote_targets_fails_data_though_both_releases_agree(clock: FakeClock) -> None:
    candidate, current = FakeRelease(clock), FakeRelease(clock)
    for code in SAMPLE[:4]:  # the candidate's migration cut the query off some targets
        candidate.links[code] = candidate.links[code].replace("example.org", "example.net")
    report = stage(candidate, current)
    assert report.failed == ["data"]  # the differential sees both releases answer alike
    detail = by_name(report)["data"][1]
    assert detail.startswith("after the migrations, 4 sampled links lost what they held: /code000 now answers 302 to ")
    assert "it led to https://example.org/code000 before" in detail


def test_some_codes_answered_differently_are_reported(clock: FakeClock) -> None:
    candidate = FakeRelease(clock, differs=frozenset(SAMPLE[3:10]))
    report = stage(candidate, FakeRelease(clock))
    assert report.failed == ["differential"]
    check = next(c for c in report.checks if c.name == "differential")
    assert check.figures == {"compared": 32, "planned": 40, "mismatches": 7, "power": 0.2750}
    assert check.detail.startswith("7 of 32 codes differ (stopped after 32 of 40): /code003: 302 to ")
    assert "?v2 (current: 302 to https://example.org/code003)" in check.detail
    assert check.detail.endswith(" and 2 more")


def test_a_candidate_ten_times_slower_fails_latency(clock: FakeClock) -> None:
    report = stage(FakeRelease(clock, delay_ms=20.0), FakeRelease(clock, delay_ms=2.0))
    assert report.failed == ["latency"]
    latency = report.checks[-1]
    assert latency.figures == {
        "candidate_median_ms": 20.0,
        "current_median_ms": 2.0,
        "limit_ms": 15.0,  # 3 x the 5 ms floor: below it, medians are scheduler noise
    }


def test_a_release_that_does_not_answer_fails_without_raising(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    dead = httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://stage")
    report = run_stage(
        dead,
        FakeRelease(clock).client(),
        sample_codes=SAMPLE,
        api_key=API_KEY,
        settings=ReleaseSettings(),
        clock=clock,
        before_migration=BEFORE,
    )
    assert report.failed == list(STAGE_CHECKS.names)
    assert "ConnectError: connection refused" in report.checks[0].detail


def test_the_sample_is_capped_by_the_settings(clock: FakeClock) -> None:
    report = run_stage(
        FakeRelease(clock).client(),
        FakeRelease(clock).client(),
        sample_codes=SAMPLE,
        api_key=API_KEY,
        settings=ReleaseSettings(stage_sample=10, stage_concurrency=1),
        clock=clock,
    )
    passed, detail = by_name(report)["differential"]
    assert passed and detail.startswith("10 requests answer alike on both releases (9.6% sure")


def test_a_slow_candidate_is_rejected_after_one_round_not_the_whole_sample(clock: FakeClock) -> None:
    candidate, current = FakeRelease(clock, delay_ms=152.0), FakeRelease(clock, delay_ms=2.0)
    current.links, current.passwords, current.prefix = candidate.links, candidate.passwords, "cur"
    asked: list[str] = []
    handle = candidate.handle
    candidate.handle = lambda request: (asked.append(f"{request.method} {request.url.path}"), handle(request))[1]  # type: ignore[method-assign]
    report = run_stage(
        candidate.client(), current.client(), sample_codes=SAMPLE, api_key=API_KEY,
        settings=ReleaseSettings(stage_concurrency=1), clock=clock,
    )  # fmt: skip
    assert report.failed == ["latency"]
    sampled = [path for path in asked if path.removeprefix("GET /") in SAMPLE]
    assert len(sampled) == 32  # one round of the 459 planned
    assert by_name(report)["differential"][1].startswith("32 requests answer alike")


def test_the_sample_is_asked_concurrently(clock: FakeClock) -> None:
    import threading

    workers = 6
    together = threading.Barrier(workers, timeout=10)  # breaks unless 6 requests are in flight at once
    release = FakeRelease(clock)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.removeprefix("/") in SAMPLE:
            together.wait()
        return release.handle(request)

    current = httpx.Client(transport=httpx.MockTransport(handle), base_url="http://stage")
    report = run_stage(
        FakeRelease(clock).client(), current, sample_codes=SAMPLE, api_key=API_KEY,
        settings=ReleaseSettings(stage_concurrency=workers, stage_sample=24 * workers), clock=clock,
    )  # fmt: skip
    assert by_name(report)["differential"][0], report.checks


def test_the_registry_refuses_two_checks_with_one_name() -> None:
    class AnotherHealth(StageCheck):
        name = "health"

        def run(self, context: StageContext) -> CheckOutcome:
            return CheckOutcome()

    registry = StageCheckRegistry([HealthCheck()])
    with pytest.raises(ValueError, match="'health' is already registered"):
        registry.register(AnotherHealth())


@dataclass
class StagedData:
    data_dir: Path
    api_key: str
    codes: list[str]
    expected: dict[str, int]
    before: dict[str, str]


@pytest.fixture
def staged_data(tmp_path: Path) -> StagedData:
    """A data directory like the guard's staged copy: links, and a key for the stage."""
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    store = open_store(settings.database_url)
    try:
        upgrade_to_head(store.engine)
        clock, rng = SystemClock(), SystemRandom()
        for i in range(30):
            new = NewLink(url=f"https://example.org/page/{i}?q={i}")
            create_link(store=store, settings=settings, clock=clock, rng=rng, new=new)
        key = create_key(store=store, clock=clock, name="stage", role=Role.EDITOR)
        codes = store.sample_codes(200)
        before = locations_before(store, codes)
        expected = add_stage_fixtures(store, settings, clock)
    finally:
        store.close()
    return StagedData(settings.data_dir, key.secret, codes, expected, before)


Serve = Callable[[Path], httpx.Client]


@pytest.fixture
def serve_release(tmp_path: Path) -> Iterator[Serve]:
    """Start ``steadylink serve --uds`` in a subprocess; a client once it is ready."""
    processes: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYLINK_")}

    def start(data_dir: Path) -> httpx.Client:
        socket, log_path = tmp_path / "release.sock", tmp_path / "release.log"
        argv = [sys.executable, "-m", "steadylink", "serve", "--uds", str(socket)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*argv, "--data-dir", str(data_dir)], cwd=tmp_path, env=env, stdout=log, stderr=log
            )
        processes.append(process)
        transport = httpx.HTTPTransport(uds=str(socket))
        clients.append(httpx.Client(transport=transport, base_url="http://stage", timeout=10))
        wait_until_ready(process, clients[-1], log_path)
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(process: subprocess.Popen[bytes], client: httpx.Client, log: Path) -> None:
    deadline = time.monotonic() + 120  # a cold start of the app can take 30 s on a busy host
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log_text = log.read_text(errors="replace")[-2000:]
    pytest.fail(f"the release did not become ready (exit {process.poll()}): {log_text}")


def test_the_real_app_on_unix_sockets_passes_the_stage(staged_data: StagedData, serve_release: Serve) -> None:
    # One process serves both roles: the contract is what is under test, and
    # every server start costs a cold import of the whole app.
    candidate = serve_release(staged_data.data_dir)
    lines: list[str] = []
    report = run_stage(
        candidate,
        candidate,
        sample_codes=staged_data.codes,
        api_key=staged_data.api_key,
        settings=ReleaseSettings(),
        progress=lines.append,
        expected=staged_data.expected,
        before_migration=staged_data.before,
    )
    assert report.passed, "\n".join(lines)
    passed, detail = by_name(report)["differential"]
    assert passed and detail.startswith("459 requests answer alike on both releases (99.0% sure"), detail
    assert by_name(report)["data"] == (True, "30 sampled links lead where they did before the migrations")
    assert by_name(report)["lifecycle"] == (True, "3 stopped links and 3 made here answered as they must")

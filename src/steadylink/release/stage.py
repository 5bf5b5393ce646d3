"""Stage: the smoke suite a candidate release must pass before any user sees it.

The guard starts the candidate on a private unix socket against a *copy* of
production data (migrated first), beside the current release, and hands both
to ``run_stage`` as ``httpx.Client`` objects: links created here land in the
copy, never in production. Run with the current release's code as the
candidate on the migrated copy, the same suite tells whether a migration
breaks the release still serving (its answers must not change).

Each check is a small class with a ``name``, listed once in ``STAGE_CHECKS``,
a registry that refuses duplicate names. Every check runs even after one has
failed: the report shows everything that is wrong, and passes only if all do.

``sample_codes`` should leave out links limited by ``max_visits``: each
resolve counts a visit, so the second release to answer could rightly say 410.

The sample is resolved on both releases ``release.stage_concurrency`` codes at
a time, in rounds; a round that settles the verdict (a difference, or a
latency far over the limit) ends it early, so a broken or slow candidate is
rejected in seconds. How many codes are compared, and what that catches:
``stage_power.py``.
"""

from __future__ import annotations

import itertools
import random
import re
import statistics
import string
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

import httpx

from steadylink.clock import Clock, SystemClock
from steadylink.release.build import Progress
from steadylink.release.history import Figure
from steadylink.release.stage_power import (
    detection_power,
    differential_sample_size,
    is_differential_failure,
)
from steadylink.settings import ReleaseSettings

CREATE_FIELDS = ("code", "short_url", "url", "created_at", "expires_at", "max_visits", "visits")
SHOWN_MISMATCHES = 5
# Medians of a few milliseconds on a unix socket, with requests in flight together, are
# scheduler noise; compare from 5 ms up.
LATENCY_FLOOR_MS = 5.0
# Pairs per round (at least): after each round the verdict may already be clear.
ROUND_PAIRS = 32
# Latency is judged early only on this many pairs, and only when far over the limit.
EARLY_LATENCY_PAIRS = 20
EARLY_LATENCY_MARGIN = 2.0
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
# Visits the ``visits`` check makes, and how long they may take to reach the stats beyond
# a worker's flush interval and the compactor's (``links.click_flush_seconds``, ``compact_seconds``)
STAGE_VISITS = 3
VISITS_WAIT_MARGIN_SECONDS = 8.0
# The API's reads of links, whose bodies ``pages`` compares field by field, leaving out
# what changes on its own while the stage runs (visits fold in, the stage's own writes).
API_READS = "/api/v1/links"
# What httpx raises for an answer it cannot read (it parses a Location even when not following it).
UNREADABLE = (httpx.InvalidURL, httpx.RemoteProtocolError, ValueError)
VOLATILE_FIELDS = frozenset({"visits", "updated_at", "stats"})
# Link pages and API reads asked for this many sample codes (besides the link the stage made).
PAGE_CODES = 5
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
# The files a page loads from the app itself: stylesheets, scripts, icons.
_PAGE_ASSET = re.compile(r"""(?:href|src)=["'](/static/[^"'?#]+)""")


class CheckFailed(Exception):
    """Raised inside a check: the release answered wrongly (not a bug in the check)."""

    def __init__(self, detail: str, figures: dict[str, Figure] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.figures = figures or {}


@dataclass(frozen=True)
class CheckOutcome:
    detail: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    duration_s: float
    detail: str
    figures: dict[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True)
class StageReport:
    passed: bool
    checks: list[CheckResult]

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def summary(self) -> str:
        if self.passed:
            return f"stage passed: {len(self.checks)} checks"
        return f"stage failed: {', '.join(self.failed)} (of {len(self.checks)} checks)"


@dataclass(frozen=True)
class Answer:
    """How one release answered a GET: what the differential check compares."""

    status: int
    location: str | None
    elapsed_ms: float

    def describe(self) -> str:
        return f"{self.status} to {self.location}" if self.location else str(self.status)


@dataclass(frozen=True)
class SampleAnswer:
    code: str
    current: Answer
    candidate: Answer


@dataclass
class StageContext:
    """What every check may use; checks pass results along (a created link, the sample)."""

    candidate: httpx.Client
    current: httpx.Client | None
    sample_codes: Sequence[str]
    api_key: str
    settings: ReleaseSettings
    clock: Clock
    rng: random.Random
    redirect_status: int = 302
    created: dict[str, Any] | None = None
    locked: dict[str, Any] | None = None  # the password link the ``password`` check made
    # how a check waits for the release (a fake clock's advance in tests)
    pause: Callable[[float], None] = time.sleep
    # how long visits may take to reach the stats: the release's flush and fold intervals
    visits_wait_seconds: float = 2.0 + VISITS_WAIT_MARGIN_SECONDS
    # links the guard put into the copy in states that must not redirect: code -> status
    expected: Mapping[str, int] = field(default_factory=dict)
    # where sampled plain links led before the candidate's migrations: code -> Location
    before_migration: Mapping[str, str] = field(default_factory=dict)
    _sample_answers: list[SampleAnswer] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def make_token(self, length: int = 12) -> str:
        return "".join(self.rng.choice(_TOKEN_ALPHABET) for _ in range(length))

    def fetch(self, client: httpx.Client, path: str) -> Answer:
        started = self.clock.monotonic()
        try:
            response = client.get(path, follow_redirects=False)
            status, location = response.status_code, response.headers.get("location")
        except UNREADABLE as exc:
            # httpx reads a Location even when it does not follow it: one it cannot read is an answer
            status, location = 0, f"(no answer httpx can read: {exc})"
        return Answer(status, location, (self.clock.monotonic() - started) * 1000)

    def resolve_sample(self, current: httpx.Client) -> list[SampleAnswer]:
        """Each sample code on both releases (the current first, then the candidate, so drift
        hits both), ``stage_concurrency`` codes at a time, round by round until the verdict is
        clear or the sample is done; done once."""
        if self._sample_answers is None:
            answers: list[SampleAnswer] = []

            def pair(code: str) -> SampleAnswer:
                return SampleAnswer(
                    code, self.fetch(current, f"/{code}"), self.fetch(self.candidate, f"/{code}")
                )

            workers = self.settings.stage_concurrency
            size = workers * max(4, -(-ROUND_PAIRS // workers))  # whole waves of `workers` pairs
            with ThreadPoolExecutor(workers, thread_name_prefix="stage") as pool:
                for start in range(0, len(self.sample_codes), size):
                    answers += pool.map(pair, self.sample_codes[start : start + size])
                    if self._is_settled(answers):
                        break
            self._sample_answers = answers
        return self._sample_answers

    def _is_settled(self, answers: list[SampleAnswer]) -> bool:
        """Whether the answers so far already decide: a difference, or latency far too high."""
        if is_differential_failure(len(answers), len(mismatches_in(answers)), self.settings):
            return True
        if len(answers) < EARLY_LATENCY_PAIRS:
            return False
        candidate_ms, _, limit_ms = latency_figures(answers, self.settings)
        return candidate_ms > EARLY_LATENCY_MARGIN * limit_ms


class StageCheck(ABC):
    """One smoke check. ``run`` returns an outcome or raises ``CheckFailed``."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, context: StageContext) -> CheckOutcome: ...


def expect_status(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        body = response.text[:200].replace("\n", " ")
        raise CheckFailed(f"{what} answered {response.status_code}, expected {status}: {body}")


class HealthCheck(StageCheck):
    """``/healthz`` (the process answers) and ``/readyz`` (it can serve) both say 200."""

    name = "health"

    def run(self, context: StageContext) -> CheckOutcome:
        for path in ("/healthz", "/readyz"):
            expect_status(context.candidate.get(path), 200, f"GET {path}")
        return CheckOutcome()


class CreateCheck(StageCheck):
    """An API key creates a link; the answer carries every field of the API contract."""

    name = "create"

    def run(self, context: StageContext) -> CheckOutcome:
        url = f"https://example.com/stage-check/{context.make_token()}"
        response = context.candidate.post("/api/v1/links", json={"url": url}, headers=context.auth)
        expect_status(response, 201, "POST /api/v1/links")
        body = response.json()
        missing = [name for name in CREATE_FIELDS if name not in body]
        if missing:
            raise CheckFailed(f"the created link lacks {', '.join(missing)}")
        if body["url"] != url:
            raise CheckFailed(f"created {body['url']!r}, asked for {url!r}")
        context.created = body
        return CheckOutcome(f"created {body['code']}", {"code": body["code"]})


class ResolveCheck(StageCheck):
    """The link just created redirects to exactly its URL (needs ``create``)."""

    name = "resolve"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.created is None:
            raise CheckFailed("no link to resolve: the create check failed")
        code, url = context.created["code"], context.created["url"]
        answer = context.fetch(context.candidate, f"/{code}")
        if answer.status != context.redirect_status or answer.location != url:
            raise CheckFailed(
                f"GET /{code} answered {answer.status} to {answer.location!r}, "
                f"expected {context.redirect_status} to {url!r}"
            )
        return CheckOutcome(figures={"elapsed_ms": round(answer.elapsed_ms, 2)})


class VisitsCheck(StageCheck):
    """Visits to the link the stage made reach its stats: the workers count them and the
    compactor folds them (needs ``create``). A release that redirects but no longer counts
    would otherwise ship, and every link's stats would stop."""

    name = "visits"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.created is None:
            raise CheckFailed("no link to visit: the create check failed")
        code = context.created["code"]
        path = f"/api/v1/links/{code}"
        made = _visits(context, path)  # the resolve check's visit may be counted already, or not yet
        for _ in range(STAGE_VISITS):
            answer = context.fetch(context.candidate, f"/{code}")
            if answer.status != context.redirect_status:
                raise CheckFailed(f"GET /{code} answered {answer.describe()} while it was visited")
        started = context.clock.monotonic()
        while True:
            counted = _visits(context, path)
            if counted >= made + STAGE_VISITS:
                waited = context.clock.monotonic() - started
                return CheckOutcome(
                    f"{STAGE_VISITS} visits in /{code}'s stats after {waited:.1f} s",
                    {"wait_s": round(waited, 2)},
                )
            limit = context.visits_wait_seconds
            if context.clock.monotonic() - started > limit:
                raise CheckFailed(
                    f"{STAGE_VISITS} visits to /{code} were not in its stats after {limit:g} s "
                    f"({counted - made} counted): the release does not count visits, or does not fold them"
                )
            context.pause(0.2)


def _visits(context: StageContext, path: str) -> int:
    response = context.candidate.get(path, headers=context.auth)
    expect_status(response, 200, f"GET {path}")
    return int(response.json()["visits"])


class UploadCheck(StageCheck):
    """An uploaded file comes back byte for byte, as an attachment."""

    name = "upload"

    def run(self, context: StageContext) -> CheckOutcome:
        content = f"steadylink stage check {context.make_token(32)}\n".encode()
        files = {"file": ("stage-check.txt", content, "text/plain")}
        response = context.candidate.post("/api/v1/files", files=files, headers=context.auth)
        expect_status(response, 201, "POST /api/v1/files")
        code = response.json()["code"]
        download = context.candidate.get(f"/{code}", follow_redirects=False)
        expect_status(download, 200, f"GET /{code} (the upload)")
        disposition = download.headers.get("content-disposition", "")
        if not disposition.startswith("attachment"):
            raise CheckFailed(f"GET /{code} has Content-Disposition {disposition!r}")
        if download.content != content:
            got, sent = len(download.content), len(content)
            raise CheckFailed(f"GET /{code} returned {got} bytes that differ from the {sent} uploaded")
        return CheckOutcome(figures={"bytes": len(content)})


class NotFoundCheck(StageCheck):
    """An unknown code is a 404 with a JSON body, not a 500."""

    name = "not_found"

    def run(self, context: StageContext) -> CheckOutcome:
        code = context.make_token()
        response = context.candidate.get(f"/{code}", headers={"Accept": "application/json"})
        expect_status(response, 404, f"GET /{code} (unknown)")
        response.json()
        return CheckOutcome()


@dataclass(frozen=True)
class PageRequest:
    method: str
    path: str
    headers: dict[str, str]

    def label(self) -> str:
        return f"{self.method} {self.path}"


class PagesCheck(StageCheck):
    """What else users and clients open answers on the candidate as on the current release.

    Redirects are the differential's; this asks the home page and every file it loads,
    link pages of sampled real links (their stats), a miss and a password link as a
    browser sees them, and the API's reads and docs. A server error fails it, and so does
    a status other than the current release's for the same request — both read the same
    copy, so a legitimate change of code does not show here. Without a current release
    only server errors fail, and a file the candidate's own page loads must answer 200."""

    name = "pages"

    def run(self, context: StageContext) -> CheckOutcome:
        home = context.candidate.get("/", headers=HTML)
        requests = page_requests(context)
        failures: list[str] = []
        for request in requests:
            got = _ask(context.candidate, request)
            want = None if context.current is None else _ask(context.current, request)
            got_status = got.status_code if got is not None else 0
            want_status = want.status_code if want is not None else 0
            if got_status >= 500 or (context.current is not None and got_status != want_status):
                than = f" (current: {want_status})" if context.current is not None else ""
                failures.append(f"{request.label()} answered {got_status or 'nothing httpx can read'}{than}")
            elif got_status == 200 and want is not None and request.path.startswith(API_READS):
                assert got is not None
                failures += [
                    f"{request.label()} reads {difference}"
                    for difference in body_differences(want.json(), got.json(), VOLATILE_FIELDS)[:1]
                ]
        assets = sorted(set(_PAGE_ASSET.findall(home.text))) if home.status_code == 200 else []
        for path in assets:
            status = context.candidate.get(path).status_code
            if status != 200:
                failures.append(f"GET {path} (loaded by the home page) answered {status}")
        asked = len(requests) + len(assets)
        figures: dict[str, Figure] = {"requests": asked, "failures": len(failures)}
        if failures:
            raise CheckFailed(
                f"{len(failures)} of {asked} page and API requests went wrong: {listed(failures)}", figures
            )
        compared = "as on the current release" if context.current is not None else "without a server error"
        return CheckOutcome(f"{asked} page and API requests answer {compared}", figures)


def body_differences(current: Any, candidate: Any, ignored: frozenset[str], at: str = "") -> list[str]:
    """Where ``candidate`` answers a value of ``current``'s JSON differently (``ignored`` keys
    left out); keys only the candidate has are new fields, not differences."""
    if isinstance(current, dict) and isinstance(candidate, dict):
        return [
            difference
            for key, value in current.items()
            if key not in ignored
            for difference in (
                body_differences(value, candidate[key], ignored, f"{at}.{key}".lstrip("."))
                if key in candidate
                else [f"no {f'{at}.{key}'.lstrip('.')} (current: {value!r})"]
            )
        ]
    if isinstance(current, list) and isinstance(candidate, list) and len(current) == len(candidate):
        return [
            difference
            for i, (was, now) in enumerate(zip(current, candidate, strict=True))
            for difference in body_differences(was, now, ignored, f"{at}[{i}]")
        ]
    return [] if current == candidate else [f"{at or 'the body'} = {candidate!r} (current: {current!r})"]


def _ask(client: httpx.Client, request: PageRequest) -> httpx.Response | None:
    """The answer, or None for one httpx cannot read (a Location that is not a URL)."""
    try:
        return client.request(request.method, request.path, headers=request.headers)
    except UNREADABLE:
        return None


def page_requests(context: StageContext) -> list[PageRequest]:
    """The reads ``PagesCheck`` asks both releases, for real sampled links and the stage's own."""
    codes = list(dict.fromkeys(context.sample_codes))[:PAGE_CODES]
    if context.created is not None:
        codes.append(str(context.created["code"]))
    auth = {**JSON, **context.auth}
    requests = [
        PageRequest("GET", "/", HTML),
        PageRequest("HEAD", "/", HTML),
        PageRequest("GET", f"/{context.make_token()}", HTML),
        PageRequest("GET", "/api/v1/links?limit=5", auth),
        PageRequest("GET", "/api/v1/whoami", auth),
        PageRequest("GET", "/api/openapi.json", JSON),
        PageRequest("GET", "/api/docs", HTML),
    ]
    for code in codes:
        requests += [
            PageRequest("GET", f"/s/{code}", HTML),
            PageRequest("HEAD", f"/{code}", JSON),
            PageRequest("GET", f"/api/v1/links/{code}", auth),
        ]
    if context.locked is not None:
        code = context.locked["code"]
        requests += [PageRequest("GET", f"/{code}", HTML), PageRequest("GET", f"/s/{code}", HTML)]
    return requests


class PasswordCheck(StageCheck):
    """A password link asks for its password, refuses a wrong one and opens with the right one."""

    name = "password"

    def run(self, context: StageContext) -> CheckOutcome:
        url = f"https://example.com/stage-check/locked/{context.make_token()}"
        password = context.make_token(16)
        body = {"url": url, "password": password}
        response = context.candidate.post("/api/v1/links", json=body, headers=context.auth)
        expect_status(response, 201, "POST /api/v1/links (with a password)")
        code = response.json()["code"]
        context.locked = {"code": code, "url": url}
        asked = context.candidate.get(f"/{code}", headers=HTML, follow_redirects=False)
        expect_status(asked, 200, f"GET /{code} (a password link, in a browser)")
        if "password" not in asked.text:
            raise CheckFailed(f"GET /{code} (a password link) shows no password form")
        wrong = context.candidate.post(
            f"/{code}", data={"password": password + "x"}, headers=JSON, follow_redirects=False
        )
        expect_status(wrong, 403, f"POST /{code} with a wrong password")
        right = context.candidate.post(
            f"/{code}", data={"password": password}, headers=JSON, follow_redirects=False
        )
        expect_status(right, 303, f"POST /{code} with its password")
        if right.headers.get("location") != url:
            raise CheckFailed(
                f"POST /{code} with its password sent to {right.headers.get('location')!r}, not {url!r}"
            )
        return CheckOutcome(f"{code}: asked, refused a wrong password, opened with the right one")


class EditCheck(StageCheck):
    """The link the stage made can be changed and deleted through the API (needs ``create``)."""

    name = "edit"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.created is None:
            raise CheckFailed("no link to edit: the create check failed")
        code = context.created["code"]
        path = f"/api/v1/links/{code}"
        url = f"https://example.com/stage-check/edited/{context.make_token()}"
        changed = context.candidate.patch(path, json={"url": url}, headers=context.auth)
        expect_status(changed, 200, f"PATCH {path}")
        read = context.candidate.get(path, headers=context.auth)
        expect_status(read, 200, f"GET {path} after the change")
        if read.json().get("url") != url:
            raise CheckFailed(f"GET {path} reads {read.json().get('url')!r} after it was changed to {url!r}")
        expect_status(context.candidate.delete(path, headers=context.auth), 204, f"DELETE {path}")
        expect_status(context.candidate.get(path, headers=context.auth), 404, f"GET {path} after the delete")
        return CheckOutcome(f"{code}: changed, read back, deleted")


class LifecycleCheck(StageCheck):
    """Links stop redirecting when they should, and only then.

    The guard's fixtures in the copy (an expired, a disabled and a used-up link) get their
    status; a link limited to two visits redirects twice, then answers 410; a link that
    expires in an hour redirects; a link disabled through the API answers 404, and redirects
    again once enabled.
    """

    name = "lifecycle"

    def run(self, context: StageContext) -> CheckOutcome:
        wrong = [
            f"/{code} answered {answer.status}, expected {status}"
            for code, status in context.expected.items()
            if (answer := context.fetch(context.candidate, f"/{code}")).status != status
        ]
        ok = context.redirect_status
        later = (context.clock.now() + timedelta(hours=1)).isoformat()
        limited = self._create(context, {"max_visits": 2})
        wrong += self._expect(context, limited, [ok, ok, 410], "limited to 2 visits")
        expiring = self._create(context, {"expires_at": later})
        wrong += self._expect(context, expiring, [ok], "expiring in an hour")
        for disabled, status in ((True, 404), (False, ok)):
            path = f"/api/v1/links/{expiring}"
            changed = context.candidate.patch(path, json={"is_disabled": disabled}, headers=context.auth)
            expect_status(changed, 200, f"PATCH {path} is_disabled={str(disabled).lower()}")
            wrong += self._expect(context, expiring, [status], "disabled" if disabled else "enabled again")
        if wrong:
            raise CheckFailed("; ".join(wrong), {"wrong": len(wrong)})
        return CheckOutcome(f"{len(context.expected)} stopped links and 3 made here answered as they must")

    def _create(self, context: StageContext, fields: dict[str, Any]) -> str:
        url = f"https://example.com/stage-check/lifecycle/{context.make_token()}"
        made = context.candidate.post("/api/v1/links", json={"url": url, **fields}, headers=context.auth)
        expect_status(made, 201, f"POST /api/v1/links with {', '.join(fields)}")
        return str(made.json()["code"])

    def _expect(self, context: StageContext, code: str, statuses: list[int], what: str) -> list[str]:
        got = [context.fetch(context.candidate, f"/{code}").status for _ in statuses]
        return [] if got == statuses else [f"/{code} ({what}) answered {got}, expected {statuses}"]


# Targets whose normal form a release could get wrong, created through both releases by the
# ``writes`` check besides targets of the real sample; the last ones must be refused.
AWKWARD_TARGETS = (
    "https://example.com/path?q=1&r=two#frag",
    "HTTPS://Example.COM:8443/Mixed/Case?Q=A",
    "https://b\u00fccher.example/stra\u00dfe?\u00fc=1",
    "http://example.com",
    "https://example.com/a%20b/%E2%82%AC?x=%2F&y=",
    "https://[2001:db8::1]:8080/v6?x=1",
    "  https://example.com/padded?with=spaces  ",
    "https://example.com/?utm_source=mail&utm_medium=email&utm_campaign=x#top",
    "https://example.com/" + "long/" * 300,
    "javascript:alert(1)",
    "ftp://example.com/file",
    "https://user:secret@example.com/",
    "example.com/no-scheme",
    "https://example.com/with space",
    "",
)
# How many targets of the real sample the ``writes`` check creates through both releases.
REAL_TARGETS = 12


@dataclass(frozen=True)
class Write:
    """How one release answered a create or change: what the ``writes`` check compares."""

    status: int
    # the API's answer without what differs by nature (the code, times); a refusal's field
    body: dict[str, Any]
    redirect: str | None  # how the link answers afterwards: status and Location

    def describe(self) -> str:
        answered = f", then answers {self.redirect}" if self.redirect else ""
        return f"{self.status} {self.body.get('url', self.body.get('field'))!r}{answered}"


class WritesCheck(StageCheck):
    """New links are stored and answered as the current release does.

    The same targets — a fixed set of awkward ones and targets of the real sample — are
    created through both releases, and each created link changed to the next target: the
    status, every field of the answer the current release gives (the url stored, the short
    URL, ...; the code and times aside) or the field a refusal names, and where the link
    then redirects must agree. The differential check compares links that already exist; this
    one catches a release that stores new ones differently.
    """

    name = "writes"

    def run(self, context: StageContext) -> CheckOutcome:
        current = context.current
        if current is None:
            return CheckOutcome("skipped: no current release to compare with")
        targets = [*AWKWARD_TARGETS, *self._real_targets(context, current)]
        differences: list[str] = []
        for target, following in zip(targets, [*targets[1:], targets[0]], strict=True):
            was = self._write(context, current, target, following)
            now = self._write(context, context.candidate, target, following)
            for step, old, new in zip(("create", "change"), was, now, strict=True):
                # another status or redirect, or a field of the current's answer answered otherwise
                fields = body_differences(old.body, new.body, VOLATILE_FIELDS)
                if fields or (new.status, new.redirect) != (old.status, old.redirect):
                    said = f"{step} {target[:80]!r}: {new.describe()} (current: {old.describe()})"
                    differences.append(said + "".join(f"; {d}" for d in fields[:2]))
        figures: dict[str, Figure] = {"targets": len(targets), "differences": len(differences)}
        if differences:
            detail = f"{len(differences)} writes differ from the current release: {listed(differences)}"
            raise CheckFailed(detail, figures)
        return CheckOutcome(f"{len(targets)} targets created and changed alike on both releases", figures)

    def _real_targets(self, context: StageContext, current: httpx.Client) -> list[str]:
        if not context.sample_codes:
            return []
        locations = {a.current.location for a in context.resolve_sample(current)}
        real = sorted(url for url in locations if url and url.startswith(("http://", "https://")))
        return real[:REAL_TARGETS]

    def _write(
        self, context: StageContext, client: httpx.Client, target: str, following: str
    ) -> tuple[Write, Write]:
        """The answers to creating ``target`` and then changing the link to ``following``."""
        made = client.post("/api/v1/links", json={"url": target}, headers=context.auth)
        created = self._answer(context, client, made)
        if made.status_code != 201:
            return created, created
        path = f"/api/v1/links/{made.json()['code']}"
        changed = client.patch(path, json={"url": following}, headers=context.auth)
        return created, self._answer(context, client, changed)

    def _answer(self, context: StageContext, client: httpx.Client, response: httpx.Response) -> Write:
        body = response.json()
        if response.status_code >= 300:
            return Write(response.status_code, {"field": body.get("field")}, None)
        code = str(body["code"])
        redirect = context.fetch(client, f"/{code}").describe()
        stable = {k: v for k, v in body.items() if k not in ("code", "created_at", "updated_at")}
        if isinstance(stable.get("short_url"), str):
            stable["short_url"] = stable["short_url"].replace(code, "{code}")
        return Write(response.status_code, stable, redirect)


class DifferentialCheck(StageCheck):
    """Every sample code gets the same status and Location from both releases."""

    name = "differential"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.current is None:
            return CheckOutcome("skipped: no current release to compare with")
        if not context.sample_codes:
            return CheckOutcome("skipped: the store has no links to compare yet")
        answers = context.resolve_sample(context.current)
        mismatches = [
            f"/{a.code}: {a.candidate.describe()} (current: {a.current.describe()})"
            for a in mismatches_in(answers)
        ]
        planned = len(context.sample_codes)
        power = detection_power(len(answers), context.settings)
        figures: dict[str, Figure] = {
            "compared": len(answers),
            "planned": planned,
            "mismatches": len(mismatches),
            "power": round(power, 4),
        }
        if is_differential_failure(len(answers), len(mismatches), context.settings):
            stopped = f" (stopped after {len(answers)} of {planned})" if len(answers) < planned else ""
            detail = f"{len(mismatches)} of {len(answers)} codes differ{stopped}: {listed(mismatches)}"
            raise CheckFailed(detail, figures)
        floor = context.settings.canary_error_floor
        return CheckOutcome(
            f"{len(answers)} requests answer alike on both releases ({power:.1%} sure to catch "
            f"one differing on {floor:.1%} of them)",
            figures,
        )


class DataCheck(StageCheck):
    """The sampled links lead where they led before the candidate's migrations ran.

    Both releases read the migrated copy, so a migration that rewrites or loses targets
    makes them answer alike, and wrongly: the differential cannot see it. The guard read the
    sampled plain links' targets from the copy before migrating it; the current release's
    answers on the migrated copy (the differential's, no new requests) must still carry
    them. Its code is the one serving now, so a difference is the migrations' doing; the
    candidate's own answers are the differential's to judge.
    """

    name = "data"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.current is None or not context.before_migration:
            return CheckOutcome("skipped: no current release, or no plain links sampled")
        answers = context.resolve_sample(context.current)
        seen: dict[str, SampleAnswer] = {a.code: a for a in answers if a.code in context.before_migration}
        before = context.before_migration
        wrong = [
            f"/{code} now answers {pair.current.describe()}, it led to {before[code]} before"
            for code, pair in seen.items()
            if pair.current.status != context.redirect_status
            or _unquoted(pair.current.location) != _unquoted(before[code])
        ]
        figures: dict[str, Figure] = {"links": len(seen), "wrong": len(wrong)}
        if wrong:
            detail = f"after the migrations, {len(wrong)} sampled links lost what they held: {listed(wrong)}"
            raise CheckFailed(detail, figures)
        return CheckOutcome(f"{len(seen)} sampled links lead where they did before the migrations", figures)


class LatencyCheck(StageCheck):
    """The candidate's median redirect time stays within a factor of the current's."""

    name = "latency"

    def run(self, context: StageContext) -> CheckOutcome:
        if context.current is None or not context.sample_codes:
            return CheckOutcome("no current release or sample to compare with")
        answers = context.resolve_sample(context.current)
        candidate_ms, current_ms, limit_ms = latency_figures(answers, context.settings)
        figures: dict[str, Figure] = {
            "candidate_median_ms": round(candidate_ms, 3),
            "current_median_ms": round(current_ms, 3),
            "limit_ms": round(limit_ms, 3),
        }
        detail = f"median {candidate_ms:.2f} ms against {current_ms:.2f} ms (limit {limit_ms:.2f})"
        if candidate_ms > limit_ms:
            raise CheckFailed(detail, figures)
        return CheckOutcome(detail, figures)


def _unquoted(location: str | None) -> str | None:
    """A Location with its percent-escapes decoded: how a release escapes is not what it holds."""
    return unquote(location) if location is not None else None


def listed(items: Sequence[str]) -> str:
    """The first few items, and how many more there are."""
    hidden = len(items) - SHOWN_MISMATCHES
    return "; ".join(items[:SHOWN_MISMATCHES]) + (f" and {hidden} more" if hidden > 0 else "")


def mismatches_in(answers: Iterable[SampleAnswer]) -> list[SampleAnswer]:
    return [
        a
        for a in answers
        if (a.candidate.status, a.candidate.location) != (a.current.status, a.current.location)
    ]


def latency_figures(answers: Sequence[SampleAnswer], settings: ReleaseSettings) -> tuple[float, float, float]:
    """The candidate's and the current's median redirect time, and the candidate's limit (ms)."""
    candidate_ms = statistics.median(a.candidate.elapsed_ms for a in answers)
    current_ms = statistics.median(a.current.elapsed_ms for a in answers)
    return candidate_ms, current_ms, settings.stage_latency_factor * max(current_ms, LATENCY_FLOOR_MS)


class StageCheckRegistry:
    """Checks by name, in order. Registering a second check under a taken name is an error."""

    def __init__(self, checks: Iterable[StageCheck] = ()) -> None:
        self._checks: dict[str, StageCheck] = {}
        for check in checks:
            self.register(check)

    def register(self, check: StageCheck) -> None:
        if check.name in self._checks:
            raise ValueError(f"A stage check named {check.name!r} is already registered.")
        self._checks[check.name] = check

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    def __iter__(self) -> Iterator[StageCheck]:
        return iter(self._checks.values())


STAGE_CHECKS = StageCheckRegistry(
    [
        HealthCheck(),
        CreateCheck(),
        ResolveCheck(),
        VisitsCheck(),
        UploadCheck(),
        NotFoundCheck(),
        PasswordCheck(),
        PagesCheck(),
        EditCheck(),
        LifecycleCheck(),
        DifferentialCheck(),
        DataCheck(),
        WritesCheck(),
        LatencyCheck(),
    ]
)


# The comparisons a deployer may expect to differ (``deploy --expect-change``): a release that
# changes on purpose how links answer or are stored. Everything else must still pass.
CHANGEABLE_CHECKS = ("differential", "writes", "data")


def run_stage(
    candidate: httpx.Client,
    current: httpx.Client | None,
    *,
    sample_codes: Sequence[str],
    api_key: str,
    settings: ReleaseSettings,
    progress: Progress = lambda line: None,
    checks: StageCheckRegistry = STAGE_CHECKS,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    redirect_status: int = 302,
    pause: Callable[[float], None] = time.sleep,
    fold_seconds: float = 2.0,
    expected: Mapping[str, int] | None = None,
    expected_changes: Sequence[str] = (),
    before_migration: Mapping[str, str] | None = None,
) -> StageReport:
    """Run every check against the candidate; passed only if all of them passed."""
    context = StageContext(
        candidate=candidate,
        current=current,
        sample_codes=planned_requests(sample_codes, settings),
        api_key=api_key,
        settings=settings,
        clock=clock or SystemClock(),
        rng=rng or random.SystemRandom(),
        redirect_status=redirect_status,
        pause=pause,
        visits_wait_seconds=fold_seconds + VISITS_WAIT_MARGIN_SECONDS,
        expected=expected or {},
        before_migration=before_migration or {},
    )
    results = [run_check(check, context, progress, check.name in expected_changes) for check in checks]
    return StageReport(passed=all(result.passed for result in results), checks=results)


def planned_requests(codes: Sequence[str], settings: ReleaseSettings) -> list[str]:
    """The codes to compare, ``differential_sample_size`` of them: repeated when there are fewer."""
    if not codes:
        return []
    return list(itertools.islice(itertools.cycle(codes), differential_sample_size(settings)))


def run_check(
    check: StageCheck, context: StageContext, progress: Progress, is_change_expected: bool = False
) -> CheckResult:
    """One check, timed; a wrong answer, a broken connection or a bad body fails it.

    With ``is_change_expected`` (the deployer said this comparison will differ) the differences
    it found are kept in the detail and the check passes.
    """
    started = context.clock.monotonic()
    is_difference = False  # a wrong answer the check found, not a crash or a broken connection
    try:
        outcome = check.run(context)
        passed, detail, figures = True, outcome.detail, outcome.figures
    except CheckFailed as exc:
        passed, detail, figures, is_difference = False, exc.detail, exc.figures, True
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a Location httpx cannot read
        passed, detail, figures = False, f"{type(exc).__name__}: {exc}", {}
    except (ValueError, KeyError, TypeError) as exc:  # a body that is not the contract's JSON
        passed, detail, figures = False, f"unexpected answer: {type(exc).__name__}: {exc}", {}
    duration_s = context.clock.monotonic() - started
    if is_change_expected and is_difference:
        passed, detail = True, f"differences the deployer expected: {detail}"
    verdict = "passed" if passed else "FAILED"
    progress(f"stage: {check.name} {verdict} ({duration_s:.2f} s){': ' + detail if detail else ''}")
    return CheckResult(check.name, passed, duration_s, detail, figures)

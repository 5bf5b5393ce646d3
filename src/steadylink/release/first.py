"""The release ``up`` starts: the one recorded as serving, else a first release built now.

Every release that serves is a built directory ``releases/<id>/`` with its own
venv; the first one too. Nothing ever serves from a working tree or an
editable install, whose code changes under a running site with every edit, a
checkout or a restart. So ``up``:

1. serves the release recorded as serving (``run/guard.json``, else the newest
   promoted record), from its kept folder;
2. on a machine where nothing was released yet, builds the first release and
   records it as promoted: with ``--source``, the checkout's ``HEAD`` commit
   (uncommitted changes are not in it, and it says so); without, a wheel of
   the installed steadylink package (``uv build``), identified by the wheel's
   sha256. A folder already built from the same commit or wheel is reused.

The first release is not gated or staged (nothing served before it to compare
with); its record says so. A first build that fails stops ``up`` with the
step and the tail of its output, before anything is started.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse

from steadylink import __version__
from steadylink.clock import utc
from steadylink.errors import ReleaseError, SteadylinkError
from steadylink.release.build import (
    BuildFailed,
    ResolvedRef,
    Step,
    StepRun,
    build_release,
    find_uv,
    make_release_id,
    resolve_ref,
    run_step,
)
from steadylink.release.guard import Guard
from steadylink.release.history import (
    RELEASE_ID_PATTERN,
    ReleaseRecord,
    StepRecord,
    current_release,
    list_records,
    load_record,
    save_record,
)

Progress = Callable[[str], None]
FIRST_BUILD_TIMEOUT = 900.0
NOT_GATED = "the first release: nothing served before it, so it was not gated, staged or canaried"


def kept_python(data_dir: Path, release_id: str) -> Path | None:
    """The venv python of a built release folder, or None if there is none (or no such id)."""
    if not RELEASE_ID_PATTERN.match(release_id):
        return None  # e.g. the old ``installed-<version>``: the editable install, never again
    python = data_dir / "releases" / release_id / "venv" / "bin" / "python"
    return python if python.exists() else None


def ensure_serving_release(guard: Guard, *, source_dir: Path | None, progress: Progress) -> str:
    """Make sure ``guard`` has a built release to serve and return its id (building one if none)."""
    data_dir = guard.data_dir
    recorded = guard.state.serving or getattr(current_release(data_dir), "id", None)
    if recorded is not None:
        python = kept_python(data_dir, recorded)
        if python is not None:
            _adopt(guard, recorded, python)
            return recorded
        if RELEASE_ID_PATTERN.match(recorded):
            python = rebuild_recorded(guard, recorded, source_dir=source_dir, progress=progress)
            _adopt(guard, recorded, python)
            return recorded
        progress(f"{recorded} ran from the installed package; building an immutable first release")
    record = build_first_release(guard, source_dir=source_dir, progress=progress)
    python = kept_python(data_dir, record.id)
    assert python is not None
    _adopt(guard, record.id, python)
    return record.id


def rebuild_recorded(guard: Guard, release_id: str, *, source_dir: Path | None, progress: Progress) -> Path:
    """The release recorded as serving lost its folder: build its commit again, under its id."""
    folder = guard.data_dir / "releases" / release_id
    try:
        record = load_record(guard.data_dir, release_id)
        if source_dir is None:
            raise ReleaseError("no --source")
        resolved = resolve_ref(source_dir, record.sha)
    except SteadylinkError:
        raise ReleaseError(
            f"Release {release_id} is recorded as serving but its folder {folder} is gone; restore "
            "it, or start `up --source GIT_DIR` with a checkout that has its commit to rebuild it."
        ) from None
    progress(f"{release_id} is recorded as serving but its folder is gone; rebuilding {resolved.short}")
    shutil.rmtree(folder, ignore_errors=True)
    try:
        built = build_release(
            resolved, releases_dir=guard.data_dir / "releases", cache_dir=_uv_cache(guard),
            clock=guard.clock, progress=progress, release_id=release_id,
            extras=guard.settings.release.build_extras, timeout_s=FIRST_BUILD_TIMEOUT,
        )  # fmt: skip
    except BuildFailed as exc:
        raise _failed(f"the commit {resolved.short} of {source_dir}", exc.runs) from None
    return built.venv_python


@dataclass(frozen=True)
class FirstBuild:
    """A release folder built for the first release (not yet recorded)."""

    release_id: str
    resolved: ResolvedRef
    runs: tuple[StepRun, ...]


def build_first_release(guard: Guard, *, source_dir: Path | None, progress: Progress) -> ReleaseRecord:
    """Build (or reuse) the first release and record it as promoted."""
    started = time.monotonic()
    if source_dir is not None:
        built = _build_from_source(guard, source_dir, progress)
    else:
        built = _build_from_wheel(guard, progress)
    if isinstance(built, ReleaseRecord):
        return built
    now, resolved = guard.clock.now(), built.resolved
    runs = "\n".join(f"{run.name}: {run.duration_s:.1f}s" for run in built.runs)
    record = ReleaseRecord(
        id=built.release_id, ref=resolved.ref, sha=resolved.sha, subject=resolved.subject,
        author=resolved.author, created_by="steadylink up", created_at=now,
        is_source_dirty=resolved.is_source_dirty, verdict="promoted", exit_code=0,
        steps=[
            StepRecord("build", "passed", now, time.monotonic() - started, runs),
            StepRecord("gates", "skipped", now, 0.0, NOT_GATED),
        ],
    )  # fmt: skip
    save_record(guard.data_dir, record)
    progress(f"first release {record.id} built in {time.monotonic() - started:.0f}s")
    if guard.journal is not None:
        guard.journal.append(
            "release.promoted", f"the first release, built from {resolved.ref} ({resolved.short})",
            release=record.id, body={"previous": None, "first": True},
        )  # fmt: skip
    return record


def _build_from_source(guard: Guard, source_dir: Path, progress: Progress) -> ReleaseRecord | FirstBuild:
    resolved = resolve_ref(source_dir, "HEAD")
    if resolved.is_source_dirty:
        progress(
            f"warning: {source_dir} has uncommitted changes; the first release is built from "
            f"the commit {resolved.short}, without them"
        )
    reused = _reusable(guard.data_dir, resolved.sha)
    if reused is not None:
        progress(f"first release: reusing {reused.id}, already built from {resolved.short}")
        return reused
    release_id = make_release_id(resolved, guard.clock.now())
    progress(f"first release {release_id}: building {source_dir} at {resolved.short} (HEAD); ~10-60 s")
    try:
        built = build_release(
            resolved, releases_dir=guard.data_dir / "releases", cache_dir=_uv_cache(guard),
            clock=guard.clock, progress=progress, release_id=release_id, extra_packages=(),
            timeout_s=FIRST_BUILD_TIMEOUT,
        )  # fmt: skip
    except BuildFailed as exc:
        raise _failed(f"the commit {resolved.short} of {source_dir}", exc.runs) from None
    return FirstBuild(release_id, resolved, built.runs)


def _build_from_wheel(guard: Guard, progress: Progress) -> ReleaseRecord | FirstBuild:
    package = installed_package_dir()
    releases_dir = guard.data_dir / "releases"
    releases_dir.mkdir(parents=True, exist_ok=True)
    uv, env = find_uv(), _uv_env(guard)
    wheel_dir = Path(tempfile.mkdtemp(dir=releases_dir, prefix=".wheel-"))
    try:
        progress(f"first release: building a wheel of the installed steadylink ({package})")
        wheel_run = _run(
            guard, Step("wheel", (uv, "build", "--wheel", "--quiet", "--out-dir", str(wheel_dir),
                                  str(package)), env=env)
        )  # fmt: skip
        wheels = sorted(wheel_dir.glob("*.whl"))
        if not wheel_run.is_ok or len(wheels) != 1:
            raise _failed(f"the installed package at {package}", [wheel_run])
        sha = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        reused = _reusable(guard.data_dir, sha)
        if reused is not None:
            progress(f"first release: reusing {reused.id}, already built from this wheel")
            return reused
        release_id = f"{utc(guard.clock.now()):%Y%m%d%H%M%S}-{sha[:12]}"
        release = releases_dir / release_id
        release.mkdir()
        wheel = release / wheels[0].name
        shutil.move(wheels[0], wheel)
    finally:
        shutil.rmtree(wheel_dir, ignore_errors=True)
    progress(f"first release {release_id}: installing {wheel.name} into a fresh venv; ~10-60 s")
    python = release / "venv" / "bin" / "python"
    runs = [wheel_run]
    for step in (
        Step("venv", (uv, "venv", "--quiet", "--python", sys.executable, str(release / "venv")), env=env),
        Step("install", (uv, "pip", "install", "--compile-bytecode", "--python", str(python), str(wheel)),
             env=env),
    ):  # fmt: skip
        runs.append(_run(guard, step))
        if not runs[-1].is_ok:
            shutil.rmtree(release, ignore_errors=True)
            raise _failed(f"the installed package at {package}", runs)
    resolved = ResolvedRef(
        source_dir=package, ref=f"steadylink {__version__} (installed)", sha=sha, short=sha[:12],
        subject=f"a wheel of the installed package ({wheel.name})", author="-", is_source_dirty=False,
    )  # fmt: skip
    return FirstBuild(release_id, resolved, tuple(runs))


def installed_package_dir() -> Path:
    """The folder steadylink was installed from (``pip install -e .`` or ``pip install DIR``)."""
    try:
        text = distribution("steadylink").read_text("direct_url.json")
    except PackageNotFoundError:
        text = None
    url = str(json.loads(text).get("url", "")) if text else ""
    parsed = urlparse(url)
    folder = Path(unquote(parsed.path)) if parsed.scheme == "file" else None
    if folder is None or not (folder / "pyproject.toml").is_file():
        raise ReleaseError(
            "steadylink was not installed from a folder, so `up` cannot build its first release "
            "from it; start `steadylink up --source GIT_DIR` with the app's git checkout."
        )
    return folder


def _reusable(data_dir: Path, sha: str) -> ReleaseRecord | None:
    """A recorded release built from this commit (or wheel) whose folder is still here."""
    for record in list_records(data_dir):
        if record.sha == sha and record.verdict == "promoted" and kept_python(data_dir, record.id):
            return record
    return None


def _adopt(guard: Guard, release_id: str, python: Path) -> None:
    guard.register_release(release_id, python)
    if guard.state.serving != release_id:
        guard.mark_serving(release_id, warm_previous=None)


def _uv_cache(guard: Guard) -> Path:
    return guard.data_dir / "cache" / "uv"


def _uv_env(guard: Guard) -> dict[str, str]:
    return {"UV_CACHE_DIR": str(_uv_cache(guard)), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def _run(guard: Guard, step: Step) -> StepRun:
    return run_step(step, clock=guard.clock, timeout_s=FIRST_BUILD_TIMEOUT)


def _failed(what: str, runs: Sequence[StepRun]) -> ReleaseError:
    last = runs[-1]
    tail = "\n".join(last.output_tail.splitlines()[-15:])
    return ReleaseError(
        f"`up` could not build its first release from {what}: step {last.name!r} failed "
        f"(exit {last.exit_code}); nothing was started. Fix it and run `up` again. Output:\n{tail}"
    )

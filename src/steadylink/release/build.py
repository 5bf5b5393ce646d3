"""Build: a git ref becomes ``releases/<id>/`` with its own venv.

The runbook, as plain data (``plan_build``):

1. export   ``git archive --prefix=src/ -o <release>/source.tar <sha>``
2. unpack   ``tar -xf <release>/source.tar -C <release>``
3. venv     ``uv venv <release>/venv``
4. install  ``uv pip install --compile-bytecode --python <venv python> <release>/src[extras] pytest``

The commit is exported, never the work tree, so a dirty checkout still builds
exactly what was committed (the record says it was dirty). ``run_step`` is
the small executor every release step goes through: it captures output, exit
code and duration, and kills the whole process group on timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from steadylink.clock import Clock, utc
from steadylink.errors import ConfigError, Conflict, InvalidInput, ReleaseError
from steadylink.release.history import RELEASE_ID_PATTERN, StepRecord

Progress = Callable[[str], None]

TAIL_LINES = 60
TAIL_CHARS = 4000
# The guard's own environment must not leak into a release's commands.
_HOST_ONLY_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
)


@dataclass(frozen=True)
class Step:
    """One command of a runbook: what to run, where, with which extra environment."""

    name: str
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # False: ``env`` is the whole environment (gates: nothing of the guard's leaks in)
    inherits_env: bool = True


@dataclass(frozen=True)
class StepRun:
    """What happened when a step ran. ``exit_code`` is None when it timed out."""

    name: str
    command: tuple[str, ...]
    exit_code: int | None
    started_at: datetime
    duration_s: float
    output_tail: str

    @property
    def is_ok(self) -> bool:
        return self.exit_code == 0

    def to_step_record(self) -> StepRecord:
        return StepRecord(
            name=self.name,
            verdict="passed" if self.is_ok else "failed",
            started_at=self.started_at,
            duration_s=self.duration_s,
            output_tail=self.output_tail,
            figures={"exit_code": -1 if self.exit_code is None else self.exit_code},
        )


Runner = Callable[[Step], StepRun]


def run_step(step: Step, *, clock: Clock, timeout_s: float) -> StepRun:
    """Run one step to completion or timeout, capturing stdout and stderr together."""
    env = {k: v for k, v in os.environ.items() if k not in _HOST_ONLY_ENV} if step.inherits_env else {}
    env.update(step.env)
    started_at, start = clock.now(), clock.monotonic()
    exit_code: int | None
    try:
        process = subprocess.Popen(
            step.argv,
            cwd=step.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return StepRun(step.name, step.argv, 127, started_at, 0.0, f"cannot run {step.argv[0]}: {exc}")
    try:
        output, _ = process.communicate(timeout=timeout_s)
        exit_code = process.returncode
        text = output.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        exit_code = None
        text = output.decode("utf-8", "replace") + f"\n[timed out after {timeout_s:g}s]"
    return StepRun(step.name, step.argv, exit_code, started_at, clock.monotonic() - start, tail(text))


def tail(text: str, *, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last lines of a command's output: where the error usually is."""
    kept = "\n".join(text.rstrip().splitlines()[-lines:])
    return kept[-chars:]


@dataclass(frozen=True)
class ResolvedRef:
    """A git ref pinned to one commit of ``source_dir``."""

    source_dir: Path
    ref: str
    sha: str
    short: str
    subject: str
    author: str
    is_source_dirty: bool


@dataclass(frozen=True)
class BuiltRelease:
    """A release directory with its exported source and installed venv."""

    id: str
    path: Path
    resolved: ResolvedRef
    runs: tuple[StepRun, ...]

    @property
    def src_dir(self) -> Path:
        return self.path / "src"

    @property
    def venv_python(self) -> Path:
        return self.path / "venv" / "bin" / "python"


class BuildFailed(ReleaseError):
    """A build step failed; ``runs`` holds every step run so far, the failing one last."""

    def __init__(self, message: str, *, runs: Sequence[StepRun]) -> None:
        super().__init__(message)
        self.runs = tuple(runs)


def resolve_ref(source_dir: Path, ref: str) -> ResolvedRef:
    """Pin ``ref`` (branch, tag, sha) in the git checkout ``source_dir`` to one commit."""
    if not ref or ref.startswith("-"):
        raise InvalidInput(f"{ref!r} is not a git ref; name a branch, tag or commit.", field="ref")
    if not source_dir.is_dir():
        raise ConfigError(
            f"Source directory {source_dir} does not exist; point it at the app's git checkout."
        )
    if shutil.which("git") is None:
        raise ConfigError("git is not installed; install it (e.g. `apt-get install git`) and try again.")
    if _git(source_dir, "rev-parse", "--git-dir").returncode != 0:
        raise ConfigError(f"{source_dir} is not a git repository; point it at the app's git checkout.")
    found = _git(source_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise InvalidInput(
            f"Unknown git ref {ref!r} in {source_dir}; check the name, or fetch it first.",
            field="ref",
        )
    sha = found.stdout.strip()
    shown = _git(source_dir, "log", "-1", "--format=%h%n%an <%ae>%n%s", sha)
    short, author, subject = [*shown.stdout.split("\n", 2), "", ""][:3]
    status = _git(source_dir, "status", "--porcelain", "--untracked-files=no")
    return ResolvedRef(
        source_dir=source_dir,
        ref=ref,
        sha=sha,
        short=short,
        subject=subject.strip(),
        author=author,
        # A bare repository has no work tree to be dirty; status fails there.
        is_source_dirty=status.returncode == 0 and bool(status.stdout.strip()),
    )


def _git(source_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(("git", "-C", str(source_dir), *args), capture_output=True, text=True, check=False)


def make_release_id(resolved: ResolvedRef, now: datetime) -> str:
    """``<UTC yyyymmddHHMMSS>-<short sha>``: sorts by time, names the commit."""
    return f"{utc(now):%Y%m%d%H%M%S}-{resolved.short}"


def plan_build(
    resolved: ResolvedRef,
    releases_dir: Path,
    *,
    release_id: str,
    cache_dir: Path,
    uv_bin: str,
    python: str,
    extras: Sequence[str] = (),
    extra_packages: Sequence[str] = ("pytest",),
) -> list[Step]:
    """The build runbook for one release, as data.

    ``extras`` installs the release's optional dependencies (``src[dev]``);
    ``extra_packages`` adds tools its gates need (pytest for the tests gate).
    """
    release = releases_dir / release_id
    tarball = release / "source.tar"
    venv_python = release / "venv" / "bin" / "python"
    uv_env = {"UV_CACHE_DIR": str(cache_dir), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    target = f"{release / 'src'}[{','.join(extras)}]" if extras else str(release / "src")
    export = ("git", "-C", str(resolved.source_dir), "archive", "--format=tar", "--prefix=src/")
    venv = (uv_bin, "venv", "--quiet", "--python", python, str(release / "venv"))
    # Bytecode is compiled at install time: a release's workers then start in
    # about a second instead of compiling every dependency on each start (and
    # under PYTHONDONTWRITEBYTECODE, on every start forever).
    install = (
        uv_bin,
        "pip",
        "install",
        "--compile-bytecode",
        "--python",
        str(venv_python),
        target,
        *extra_packages,
    )
    return [
        Step("export", (*export, f"--output={tarball}", resolved.sha)),
        Step("unpack", ("tar", "-xf", str(tarball), "-C", str(release))),
        Step("venv", venv, env=uv_env),
        Step("install", install, env=uv_env),
    ]


def build_release(
    resolved: ResolvedRef,
    *,
    releases_dir: Path,
    cache_dir: Path,
    clock: Clock,
    progress: Progress = lambda line: None,
    timeout_s: float = 900.0,
    python: str = sys.executable,
    uv_bin: str | None = None,
    extras: Sequence[str] = (),
    extra_packages: Sequence[str] = ("pytest",),
    runner: Runner | None = None,
    release_id: str | None = None,
) -> BuiltRelease:
    """Export, create the venv and install; raise ``BuildFailed`` with the failing output.

    ``release_id`` defaults to ``make_release_id`` at the clock's now; pass the
    record's id to keep the directory and the record under one name.
    """
    release_id = release_id or make_release_id(resolved, clock.now())
    if not RELEASE_ID_PATTERN.match(release_id):
        raise ReleaseError(f"{release_id!r} is not a release id; use make_release_id().")
    release = releases_dir / release_id
    try:
        release.mkdir(parents=True)
    except FileExistsError:
        raise Conflict(f"Release directory {release} already exists; try again in a second.") from None
    steps = plan_build(
        resolved,
        releases_dir,
        release_id=release_id,
        cache_dir=cache_dir,
        uv_bin=uv_bin or find_uv(),
        python=python,
        extras=extras,
        extra_packages=extra_packages,
    )
    run = runner or (lambda step: run_step(step, clock=clock, timeout_s=timeout_s))
    runs: list[StepRun] = []
    for step in steps:
        progress(f"build {release_id}: {step.name}")
        outcome = run(step)
        runs.append(outcome)
        if not outcome.is_ok:
            shutil.rmtree(release, ignore_errors=True)
            raise BuildFailed(
                f"Build of {resolved.ref} ({resolved.short}) failed at step {step.name!r}; "
                f"fix the commit and deploy again. Output:\n{outcome.output_tail}",
                runs=runs,
            )
    (release / "source.tar").unlink(missing_ok=True)
    return BuiltRelease(id=release_id, path=release, resolved=resolved, runs=tuple(runs))


def prune_releases(releases_dir: Path, *, keep: int, protected: set[str]) -> list[str]:
    """Delete all but the newest ``keep`` release directories, never a protected one."""
    if keep < 1:
        raise ReleaseError("release.keep_releases must be at least 1, or nothing could roll back.")
    if not releases_dir.is_dir():
        return []
    ids = sorted(
        (p.name for p in releases_dir.iterdir() if p.is_dir() and RELEASE_ID_PATTERN.match(p.name)),
        reverse=True,
    )
    doomed = [release_id for release_id in ids[keep:] if release_id not in protected]
    for release_id in doomed:
        shutil.rmtree(releases_dir / release_id)
    return doomed


def find_uv() -> str:
    """The uv binary that came with steadylink, else the one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise ReleaseError("uv is not installed; `pip install uv` and deploy again.") from None
        return found

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.release.git_repo import git

from steadylink.clock import FakeClock
from steadylink.errors import ConfigError, Conflict, InvalidInput, ReleaseError
from steadylink.release import (
    BuildFailed,
    BuiltRelease,
    ResolvedRef,
    Step,
    StepRun,
    build_release,
    make_release_id,
    plan_build,
    prune_releases,
    resolve_ref,
    run_step,
)
from steadylink.release.build import Runner

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "shorty"
version = "0.1.0"

[tool.hatch.build.targets.wheel]
packages = ["src/shorty"]
"""
APP = 'def greeting() -> str:\n    return "Hi jeff"\n'
TEST = "from shorty.app import greeting\n\n\ndef test_greeting():\n    assert greeting() == 'Hi jeff'\n"


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("source")
    git(repo, "init", "-q", "-b", "main")
    commit_files(
        repo,
        {
            "pyproject.toml": PYPROJECT,
            "src/shorty/__init__.py": "",
            "src/shorty/app.py": APP,
            "tests/test_app.py": TEST,
        },
        "First version",
    )
    git(repo, "tag", "v1")
    git(repo, "checkout", "-q", "-b", "broken")
    commit_files(repo, {"pyproject.toml": "[project\nname = "}, "Break the pyproject")
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by every real build of the session, so only the first one downloads.
    return tmp_path_factory.getbasetemp() / "uv-cache"


@pytest.fixture(scope="module")
def built(source: Path, uv_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltRelease:
    resolved = resolve_ref(source, "v1")
    releases = tmp_path_factory.mktemp("releases")
    return build_release(resolved, releases_dir=releases, cache_dir=uv_cache, clock=FakeClock())


def test_resolve_ref_pins_a_tag_to_its_commit(source: Path) -> None:
    resolved = resolve_ref(source, "v1")
    assert resolved.sha == git(source, "rev-parse", "v1")
    assert resolved.sha.startswith(resolved.short) and len(resolved.short) >= 7
    assert resolved.subject == "First version"
    assert resolved.author == "Alice <alice@example.com>"
    assert resolved.ref == "v1"
    assert not resolved.is_source_dirty


def test_resolve_ref_notices_a_dirty_work_tree(source: Path) -> None:
    app = source / "src/shorty/app.py"
    app.write_text("uncommitted = True\n")
    try:
        assert resolve_ref(source, "main").is_source_dirty
    finally:
        git(source, "checkout", "--", "src/shorty/app.py")
    assert not resolve_ref(source, "main").is_source_dirty


def test_resolve_ref_errors_say_what_is_wrong(source: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Unknown git ref 'nope'") as unknown:
        resolve_ref(source, "nope")
    assert unknown.value.field == "ref"
    with pytest.raises(InvalidInput, match="is not a git ref"):
        resolve_ref(source, "--output=/tmp/x")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_ref(tmp_path / "missing", "main")
    with pytest.raises(ConfigError, match="is not a git repository"):
        resolve_ref(tmp_path, "main")


def test_release_id_is_utc_time_and_short_sha() -> None:
    resolved = ResolvedRef(Path("."), "main", "a" * 40, "aaaaaaa", "s", "a", False)
    assert make_release_id(resolved, datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)) == "20260304050607-aaaaaaa"


def test_plan_build_is_the_runbook_as_data(tmp_path: Path) -> None:
    resolved = ResolvedRef(Path("/src"), "main", "f" * 40, "fffffff", "s", "a", False)
    steps = plan_build(
        resolved, Path("/r"), release_id="X", cache_dir=Path("/cache"), uv_bin="uv", python="py3"
    )
    assert [(s.name, s.argv) for s in steps] == [
        (
            "export",
            (
                "git",
                "-C",
                "/src",
                "archive",
                "--format=tar",
                "--prefix=src/",
                "--output=/r/X/source.tar",
                "f" * 40,
            ),
        ),
        ("unpack", ("tar", "-xf", "/r/X/source.tar", "-C", "/r/X")),
        ("venv", ("uv", "venv", "--quiet", "--python", "py3", "/r/X/venv")),
        (
            "install",
            (
                "uv",
                "pip",
                "install",
                "--compile-bytecode",
                "--python",
                "/r/X/venv/bin/python",
                "/r/X/src",
                "pytest",
            ),
        ),
    ]
    assert steps[3].env["UV_CACHE_DIR"] == "/cache"
    with_dev = plan_build(
        resolved,
        Path("/r"),
        release_id="X",
        cache_dir=Path("/c"),
        uv_bin="uv",
        python="py3",
        extras=("dev", "pg"),
        extra_packages=(),
    )
    assert with_dev[3].argv[-1] == "/r/X/src[dev,pg]"


def test_build_exports_the_commit_into_an_isolated_venv(built: BuiltRelease) -> None:
    assert built.id == f"20260101000000-{built.resolved.short}"
    assert [run.name for run in built.runs] == ["export", "unpack", "venv", "install"]
    assert (built.src_dir / "pyproject.toml").read_text() == PYPROJECT
    assert not (built.path / "source.tar").exists()
    probe = subprocess.run(
        [str(built.venv_python), "-c", "import shorty.app, pytest, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == str(built.path / "venv")


def test_broken_pyproject_fails_the_build_with_the_output(
    source: Path, uv_cache: Path, tmp_path: Path
) -> None:
    resolved = resolve_ref(source, "broken")
    with pytest.raises(BuildFailed) as failed:
        build_release(resolved, releases_dir=tmp_path, cache_dir=uv_cache, clock=FakeClock())
    assert isinstance(failed.value, ReleaseError)
    assert "failed at step 'install'" in failed.value.message
    assert "pyproject.toml" in failed.value.message
    assert failed.value.runs[-1].name == "install" and failed.value.runs[-1].exit_code != 0
    assert list(tmp_path.iterdir()) == []


def fake_runner(failing: str) -> tuple[list[str], Runner]:
    seen: list[str] = []

    def run(step: Step) -> StepRun:
        seen.append(step.name)
        code = 1 if step.name == failing else 0
        return StepRun(step.name, step.argv, code, datetime(2026, 1, 1, tzinfo=UTC), 0.0, "boom")

    return seen, run


def test_build_stops_at_the_first_failing_step(source: Path, tmp_path: Path) -> None:
    seen, run = fake_runner("venv")
    with pytest.raises(BuildFailed, match="failed at step 'venv'") as failed:
        build_release(
            resolve_ref(source, "v1"),
            releases_dir=tmp_path,
            cache_dir=tmp_path,
            clock=FakeClock(),
            runner=run,
            uv_bin="uv",
        )
    assert seen == ["export", "unpack", "venv"]
    assert [r.exit_code for r in failed.value.runs] == [0, 0, 1]


def test_building_the_same_commit_in_the_same_second_is_a_conflict(source: Path, tmp_path: Path) -> None:
    resolved = resolve_ref(source, "v1")
    (tmp_path / make_release_id(resolved, FakeClock().now())).mkdir()
    with pytest.raises(Conflict, match="already exists"):
        build_release(resolved, releases_dir=tmp_path, cache_dir=tmp_path, clock=FakeClock())


def test_build_can_take_the_records_release_id(source: Path, tmp_path: Path) -> None:
    seen, run = fake_runner("none")
    built = build_release(
        resolve_ref(source, "v1"),
        releases_dir=tmp_path,
        cache_dir=tmp_path,
        clock=FakeClock(),
        runner=run,
        uv_bin="uv",
        release_id="20250505050505-abcdef0",
    )
    assert built.id == "20250505050505-abcdef0" and built.path.is_dir()
    assert seen == ["export", "unpack", "venv", "install"]
    with pytest.raises(ReleaseError, match="is not a release id"):
        build_release(
            resolve_ref(source, "v1"),
            releases_dir=tmp_path,
            cache_dir=tmp_path,
            clock=FakeClock(),
            runner=run,
            uv_bin="uv",
            release_id="../escape",
        )


def test_prune_keeps_the_newest_and_the_protected(tmp_path: Path) -> None:
    ids = [f"2026010100000{n}-abc1234" for n in range(6)]
    for release_id in ids:
        (tmp_path / release_id).mkdir()
    (tmp_path / "not-a-release").mkdir()
    removed = prune_releases(tmp_path, keep=2, protected={ids[1]})
    assert sorted(removed) == [ids[0], ids[2], ids[3]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [ids[1], ids[4], ids[5], "not-a-release"]
    with pytest.raises(ReleaseError, match="at least 1"):
        prune_releases(tmp_path, keep=0, protected=set())


def test_run_step_captures_output_exit_code_and_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = run_step(Step("s", (sys.executable, "-c", script)), clock=clock, timeout_s=30)
    assert (done.exit_code, done.is_ok) == (3, False)
    assert "out" in done.output_tail and "err" in done.output_tail
    slow = run_step(Step("slow", ("sleep", "30")), clock=clock, timeout_s=0.2)
    assert slow.exit_code is None and "timed out after 0.2s" in slow.output_tail
    missing = run_step(Step("m", (str(tmp_path / "nope"),)), clock=clock, timeout_s=1)
    assert missing.exit_code == 127 and "cannot run" in missing.output_tail

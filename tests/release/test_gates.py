"""Gates against real releases of a tiny app, one per bug from the incident reports."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.release.git_repo import git

from steadylink.clock import FakeClock
from steadylink.errors import ConfigError
from steadylink.release import (
    GATES,
    BuiltRelease,
    Gate,
    GateContext,
    GateRegistry,
    Step,
    StepRun,
    build_release,
    resolve_ref,
    run_gates,
)
from steadylink.release.gates import TestsGate

DEFAULT_GATES = ("ruff", "compile", "tests", "import")

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
APP = """\
import json
from pathlib import Path

URLS_FILE = Path(__file__).with_name("urls.json")


class App:
    def __init__(self):
        self.handlers = {}

    def route(self, path):
        def register(handler):
            self.handlers[path] = handler
            return handler

        return register


app = App()


def load_urls(path=URLS_FILE):
    with open(path) as f:
        return json.load(f)


@app.route("/")
def home():
    return "Hi jeff"


@app.route("/<code>")
def follow(code):
    return load_urls()[code]
"""
TEST = """\
from shorty.app import home, load_urls


def test_home():
    assert home() == "Hi jeff"


def test_load_urls(tmp_path):
    path = tmp_path / "urls.json"
    path.write_text('{"a": "https://example.com"}')
    assert load_urls(path) == {"a": "https://example.com"}
"""
FILES = {
    "pyproject.toml": PYPROJECT,
    "src/shorty/__init__.py": "",
    "src/shorty/app.py": APP,
    "src/shorty/urls.json": "{}",
    "tests/test_app.py": TEST,
}
# Each seed is one wrong line, as in the incident reports: (file, good text, bad text).
SEEDS = {
    "json_loads": ("src/shorty/app.py", "json.load(f)", "json.loads(f)"),
    "app_routes": ("src/shorty/app.py", '@app.route("/")', '@app.routes("/")'),
    "wrong_file": ("src/shorty/app.py", '"urls.json"', '"urls.jsn"'),
    "undefined_name": ("src/shorty/app.py", "json.load(f)", "json.load(file)"),
    "failing_test": ("tests/test_app.py", '== "Hi jeff"', '== "Hi jeff "'),
    "syntax_error": ("src/shorty/app.py", "def home():", "def home()"),
    "no_tests": ("tests/test_app.py", TEST, ""),
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with the good app on main and one branch per seeded bug."""
    repo = tmp_path_factory.mktemp("shorty")
    git(repo, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Good version")
    for seed, (name, good, bad) in SEEDS.items():
        git(repo, "checkout", "-q", "-b", seed, "main")
        text = (repo / name).read_text()
        assert good in text
        (repo / name).write_text(text.replace(good, bad, 1))
        git(repo, "commit", "-q", "-am", f"Seed {seed}")
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture(scope="module")
def build(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], BuiltRelease]:
    """Build a ref of the tiny app for real (once per ref)."""
    releases = tmp_path_factory.mktemp("releases")
    cache = tmp_path_factory.getbasetemp() / "uv-cache"
    built: dict[str, BuiltRelease] = {}

    def build_ref(ref: str) -> BuiltRelease:
        if ref not in built:
            resolved = resolve_ref(source, ref)
            built[ref] = build_release(
                resolved, releases_dir=releases / ref, cache_dir=cache, clock=FakeClock()
            )
        return built[ref]

    return build_ref


def context(built: BuiltRelease) -> GateContext:
    return GateContext.for_release(built, app_module="shorty.app")


def test_a_good_release_passes_every_default_gate(build: Callable[[str], BuiltRelease]) -> None:
    lines: list[str] = []
    report = run_gates(context(build("main")), names=DEFAULT_GATES, clock=FakeClock(), progress=lines.append)
    assert report.is_passed and report.caught_by is None
    assert [r.name for r in report.results] == list(DEFAULT_GATES)
    assert "gate tests: passed in 0.0s" in lines
    assert report.results[2].note == ""


@pytest.mark.parametrize(
    ("seed", "caught_by"),
    [
        ("undefined_name", "ruff"),
        ("syntax_error", "ruff"),
        ("json_loads", "tests"),
        ("failing_test", "tests"),
        ("app_routes", "tests"),
    ],
)
def test_default_gates_catch_seeded_bugs(
    build: Callable[[str], BuiltRelease], seed: str, caught_by: str
) -> None:
    report = run_gates(context(build(seed)), names=DEFAULT_GATES, clock=FakeClock())
    assert not report.is_passed
    assert report.caught_by == caught_by
    assert report.results[-1].name == caught_by, "gates after the failing one must not run"


@pytest.mark.parametrize(
    ("seed", "gate", "evidence"),
    [
        ("undefined_name", "ruff", "F821"),
        ("syntax_error", "compile", "SyntaxError"),
        ("failing_test", "tests", "1 failed"),
        ("app_routes", "import", "AttributeError: 'App' object has no attribute 'routes'"),
    ],
)
def test_each_gate_on_its_own_fails_with_evidence(
    build: Callable[[str], BuiltRelease], seed: str, gate: str, evidence: str
) -> None:
    good = run_gates(context(build("main")), names=(gate,), clock=FakeClock())
    bad = run_gates(context(build(seed)), names=(gate,), clock=FakeClock())
    assert good.is_passed
    assert bad.caught_by == gate
    assert evidence in bad.results[0].output_tail


def test_a_file_referred_to_by_a_wrong_name_gets_past_the_gates(
    build: Callable[[str], BuiltRelease],
) -> None:
    # Only a request that reads the file notices: this is staging's job (DESIGN.md step 4).
    report = run_gates(context(build("wrong_file")), names=DEFAULT_GATES, clock=FakeClock())
    assert report.is_passed


def test_import_gate_imports_the_installed_release_not_stray_files(
    build: Callable[[str], BuiltRelease],
) -> None:
    built = build("main")
    stray = built.path / "stray_module.py"
    stray.write_text("")
    try:
        ctx = GateContext.for_release(built, app_module="stray_module")
        report = run_gates(ctx, names=("import",), clock=FakeClock())
    finally:
        stray.unlink()
    assert report.caught_by == "import"
    assert "No module named 'stray_module'" in report.results[0].output_tail


def test_a_release_without_tests_passes_with_a_note(build: Callable[[str], BuiltRelease]) -> None:
    report = run_gates(context(build("no_tests")), names=("tests",), clock=FakeClock())
    assert report.is_passed
    assert report.results[0].note == "no tests found"
    assert report.results[0].to_step_record().figures == {"note": "no tests found"}


def fake_run(failing: set[str]) -> Callable[[Step], StepRun]:
    def run(step: Step) -> StepRun:
        code = 1 if step.name in failing else 0
        return StepRun(step.name, step.argv, code, datetime(2026, 1, 1, tzinfo=UTC), 0.5, "out")

    return run


def test_run_gates_stops_at_the_first_failure_and_reports_progress() -> None:
    ctx = GateContext(Path("/r/src"), Path("/r/venv/bin/python"), ruff_bin="ruff")
    lines: list[str] = []
    report = run_gates(
        ctx,
        names=("ruff", "compile", "import"),
        clock=FakeClock(),
        progress=lines.append,
        runner=fake_run({"compile"}),
    )
    assert [(r.name, r.passed) for r in report.results] == [("ruff", True), ("compile", False)]
    assert report.caught_by == "compile"
    assert lines[-1] == "gate compile: FAILED in 0.5s"
    assert report.results[1].to_step_record().verdict == "failed"


def test_gate_commands_are_plain_data() -> None:
    ctx = GateContext(Path("/r/src"), Path("/r/venv/bin/python"), ruff_bin="ruff")
    plans = {name: GATES.select([name])[0].plan(ctx) for name in GATES.names}
    assert plans["ruff"].argv == (
        "ruff",
        "check",
        "--select",
        "F",
        "--no-cache",
        "--output-format",
        "concise",
        "/r/src",
    )
    assert plans["compile"].argv == ("/r/venv/bin/python", "-m", "compileall", "-q", "/r/src")
    assert plans["tests"].argv[1:] == ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider")
    assert plans["tests"].cwd == Path("/r/src")
    assert plans["import"].argv[-1] == "steadylink.web.app"


def test_timeout_fails_a_gate_and_exit_5_passes_only_the_tests_gate() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    timed_out = StepRun("tests", ("pytest",), None, now, 600.0, "[timed out]")
    no_tests = StepRun("tests", ("pytest",), 5, now, 0.1, "no tests ran")
    assert TestsGate().judge(timed_out) == (False, "timed out")
    assert TestsGate().judge(no_tests) == (True, "no tests found")
    assert GATES.select(["compile"])[0].judge(no_tests) == (False, "")


def test_registry_refuses_duplicates_and_unknown_names() -> None:
    class Again(TestsGate):
        pass

    registry = GateRegistry([TestsGate()])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Again())
    with pytest.raises(ConfigError, match="Unknown gate 'lint' in release.gates; known gates: tests"):
        registry.select(["tests", "lint"])
    with pytest.raises(ConfigError, match="names a gate twice"):
        registry.select(["tests", "tests"])
    assert GATES.names == DEFAULT_GATES
    assert all(isinstance(gate, Gate) for gate in GATES.select(DEFAULT_GATES))


ENV_TEST = """\
import os


def test_the_gate_sees_no_secret_of_the_guard():
    leaked = sorted(k for k in os.environ if k.startswith("STEADYLINK_") and not k.startswith("STEADYLINK_TEST_"))
    assert leaked == [], leaked
    assert "GITHUB_TOKEN" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert os.environ["STEADYLINK_TEST_POSTGRES"] == "postgresql://tests-only"
    assert os.environ["HOME"] and os.environ["PATH"]
"""


def test_gates_run_the_releases_code_with_a_scrubbed_environment(
    build: Callable[[str], BuiltRelease], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's tests are its code: they get nothing of the guard's environment
    but PATH, HOME, the locale and their own STEADYLINK_TEST_* settings."""
    built = build("main")
    (built.src_dir / "tests" / "test_env.py").write_text(ENV_TEST)
    for name, value in [
        ("STEADYLINK_DATABASE", "postgresql://prod:secret@db/prod"),
        ("STEADYLINK_API_KEY", "slk_secret"),
        ("GITHUB_TOKEN", "ghp_secret"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("STEADYLINK_TEST_POSTGRES", "postgresql://tests-only"),
    ]:
        monkeypatch.setenv(name, value)
    try:
        report = run_gates(context(build("main")), names=("tests",), clock=FakeClock())
    finally:
        (built.src_dir / "tests" / "test_env.py").unlink()
    assert report.is_passed, report.results[0].output_tail
    assert "secret" not in report.results[0].output_tail

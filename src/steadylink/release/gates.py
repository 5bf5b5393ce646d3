"""Gates: checks a built release must pass before it may serve anyone.

Each gate is a small class with a ``name`` and two duties: ``plan`` says which
command checks the release (plain data, a ``Step``), and ``judge`` reads what
that command did. Gates are listed once, in ``GATES``, a registry that refuses
two gates with the same name; ``release.gates`` picks which run, in order.
``run_gates`` stops at the first failure: that gate is the one that caught it.

What each default gate catches:

- ``ruff``      pyflakes rules: undefined names, typos in names, broken imports
                of names, syntax errors. Not wrong-but-existing calls.
- ``compile``   every file byte-compiles under the release's own interpreter.
- ``tests``     the release's own test suite, with its own venv.
- ``import``    the app module imports: decorators and module-level code run,
                so ``@app.routes`` (an AttributeError at import) fails here.

Gates run the release's code (its tests, its imports) before anyone trusted
it, so they get a scrubbed environment, not the guard's: ``PATH``, ``HOME``,
the locale, ``TZ`` and ``TMPDIR``, and the test suite's own ``STEADYLINK_TEST_*``
knobs — never ``STEADYLINK_DATABASE``, an API key or a token.
"""

from __future__ import annotations

import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from steadylink.clock import Clock
from steadylink.errors import ConfigError
from steadylink.release.build import BuiltRelease, Progress, Runner, Step, StepRun, run_step
from steadylink.release.history import StepRecord

DEFAULT_APP_MODULE = "steadylink.web.app"
PYTEST_NO_TESTS = 5


_PASSED_ENV = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"})
_PASSED_PREFIX = "STEADYLINK_TEST_"


def gate_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What of ``environ`` a gate may see (module docstring)."""
    return {k: v for k, v in environ.items() if k in _PASSED_ENV or k.startswith(_PASSED_PREFIX)}


@dataclass(frozen=True)
class GateContext:
    """What a gate checks: the release's exported source and its venv's python."""

    src_dir: Path
    venv_python: Path
    app_module: str = DEFAULT_APP_MODULE
    ruff_bin: str | None = None
    test_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: gate_environment(os.environ))

    def step(self, name: str, argv: tuple[str, ...], *, cwd: Path | None = None) -> Step:
        """A gate's command, run in the release's source folder (or ``cwd``) with only ``env``."""
        return Step(name, argv, cwd=cwd or self.src_dir, env=dict(self.env), inherits_env=False)

    @classmethod
    def for_release(
        cls, built: BuiltRelease, *, app_module: str = DEFAULT_APP_MODULE, test_args: tuple[str, ...] = ()
    ) -> GateContext:
        return cls(
            src_dir=built.src_dir, venv_python=built.venv_python, app_module=app_module, test_args=test_args
        )


@dataclass(frozen=True)
class GateResult:
    """How one gate judged the release."""

    name: str
    passed: bool
    duration_s: float
    output_tail: str
    command: tuple[str, ...]
    started_at: datetime
    note: str = ""

    def to_step_record(self) -> StepRecord:
        figures: dict[str, float | int | str] = {"note": self.note} if self.note else {}
        return StepRecord(
            name=self.name,
            verdict="passed" if self.passed else "failed",
            started_at=self.started_at,
            duration_s=self.duration_s,
            output_tail=self.output_tail,
            figures=figures,
        )


class Gate(ABC):
    """A check a release must pass. Subclasses set ``name`` and implement ``plan``.

    ``plan`` must not run anything; ``judge`` gets the finished run and says
    whether the release passed, with an optional note for the record.
    """

    name: ClassVar[str]

    @abstractmethod
    def plan(self, context: GateContext) -> Step: ...

    def judge(self, run: StepRun) -> tuple[bool, str]:
        if run.exit_code is None:
            return False, "timed out"
        return run.is_ok, ""


class RuffGate(Gate):
    """Static analysis with ruff's pyflakes rules (F) over the release's source."""

    name = "ruff"

    def plan(self, context: GateContext) -> Step:
        ruff = context.ruff_bin or find_ruff()
        argv = (ruff, "check", "--select", "F", "--no-cache", "--output-format", "concise")
        return context.step(self.name, (*argv, str(context.src_dir)))


class CompileGate(Gate):
    """Every Python file byte-compiles with the release's own interpreter."""

    name = "compile"

    def plan(self, context: GateContext) -> Step:
        argv = (str(context.venv_python), "-m", "compileall", "-q", str(context.src_dir))
        return context.step(self.name, argv)


class TestsGate(Gate):
    """The release's own test suite, stopping at its first failure.

    A release without tests passes, noted "no tests found" (pytest's exit 5).
    """

    name = "tests"

    def plan(self, context: GateContext) -> Step:
        argv = (str(context.venv_python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider")
        return context.step(self.name, (*argv, *context.test_args))

    def judge(self, run: StepRun) -> tuple[bool, str]:
        if run.exit_code == PYTEST_NO_TESTS:
            return True, "no tests found"
        return super().judge(run)


class ImportGate(Gate):
    """The app module imports in the release's venv, from the installed release.

    ``-I`` keeps the current directory and ``PYTHON*`` variables out, so this
    imports what was installed, not stray files beside it.
    """

    name = "import"

    def plan(self, context: GateContext) -> Step:
        code = "import importlib, sys; importlib.import_module(sys.argv[1])"
        argv = (str(context.venv_python), "-I", "-c", code, context.app_module)
        return context.step(self.name, argv, cwd=context.src_dir.parent)


class GateRegistry:
    """Gates by name. Registering a second gate under a taken name is an error."""

    def __init__(self, gates: Iterable[Gate] = ()) -> None:
        self._gates: dict[str, Gate] = {}
        for gate in gates:
            self.register(gate)

    def register(self, gate: Gate) -> None:
        if gate.name in self._gates:
            raise ValueError(f"A gate named {gate.name!r} is already registered.")
        self._gates[gate.name] = gate

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._gates)

    def select(self, names: Sequence[str]) -> list[Gate]:
        """The gates named, in that order; unknown or repeated names are config errors."""
        if len(set(names)) != len(names):
            raise ConfigError(f"release.gates names a gate twice: {list(names)}.")
        unknown = [name for name in names if name not in self._gates]
        if unknown:
            known = ", ".join(self._gates)
            raise ConfigError(f"Unknown gate {unknown[0]!r} in release.gates; known gates: {known}.")
        return [self._gates[name] for name in names]


GATES = GateRegistry([RuffGate(), CompileGate(), TestsGate(), ImportGate()])


@dataclass(frozen=True)
class GateReport:
    """Every gate that ran, in order; the last one failed if any did."""

    results: tuple[GateResult, ...]

    @property
    def is_passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def caught_by(self) -> str | None:
        failed = [result.name for result in self.results if not result.passed]
        return failed[0] if failed else None


def run_gates(
    context: GateContext,
    *,
    names: Sequence[str],
    clock: Clock,
    progress: Progress = lambda line: None,
    timeout_s: float = 600.0,
    registry: GateRegistry = GATES,
    runner: Runner | None = None,
) -> GateReport:
    """Run the named gates in order, stopping at the first that fails."""
    gates = registry.select(names)
    run = runner or (lambda step: run_step(step, clock=clock, timeout_s=timeout_s))
    results: list[GateResult] = []
    for gate in gates:
        progress(f"gate {gate.name}: running")
        outcome = run(gate.plan(context))
        passed, note = gate.judge(outcome)
        result = GateResult(
            name=gate.name,
            passed=passed,
            duration_s=outcome.duration_s,
            output_tail=outcome.output_tail,
            command=outcome.command,
            started_at=outcome.started_at,
            note=note,
        )
        results.append(result)
        verdict = "passed" if passed else "FAILED"
        extra = f" ({note})" if note else ""
        progress(f"gate {gate.name}: {verdict} in {outcome.duration_s:.1f}s{extra}")
        if not passed:
            break
    return GateReport(tuple(results))


def find_ruff() -> str:
    """The ruff binary installed beside steadylink's interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "ruff"
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        raise ConfigError(
            "ruff is not installed, and the 'ruff' gate needs it; "
            "`pip install ruff`, or remove 'ruff' from release.gates."
        )
    return found

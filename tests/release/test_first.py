"""The first release: built into its own folder and venv, recorded, reused; never the checkout.

Real builds (uv, git): one data folder for the module so uv's cache is filled once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.guard_harness import make_source_repo
from tests.release.git_repo import git

from steadylink.errors import ReleaseError
from steadylink.release.first import ensure_serving_release, installed_package_dir
from steadylink.release.guard import Guard
from steadylink.release.history import list_records
from steadylink.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first")


@pytest.fixture(scope="module")
def source(workdir: Path) -> Path:
    return make_source_repo(workdir)


@pytest.fixture(scope="module")
def settings(workdir: Path) -> Settings:
    return Settings(data_dir=workdir / "data")


@pytest.fixture(scope="module")
def first(settings: Settings, source: Path) -> Iterator[tuple[str, list[str]]]:
    lines: list[str] = []
    release = ensure_serving_release(Guard(settings), source_dir=source, progress=lines.append)
    yield release, lines


def test_the_first_release_is_built_from_head_into_its_own_venv_and_recorded(
    settings: Settings, source: Path, first: tuple[str, list[str]]
) -> None:
    release, _ = first
    head = git(source, "rev-parse", "HEAD")
    assert release.endswith(head[:7])
    [record] = list_records(settings.data_dir.resolve())
    assert (record.id, record.sha, record.verdict, record.ref) == (release, head, "promoted", "HEAD")
    assert [s.name for s in record.steps] == ["build", "gates"]
    assert record.steps[1].verdict == "skipped" and "first release" in record.steps[1].output_tail
    python = settings.data_dir.resolve() / "releases" / release / "venv" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import steadylink; print(steadylink.__file__)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(python.parent.parent)) and str(ROOT / "src") not in where
    guard = Guard(settings)  # what a restarted `up` reads
    assert guard.state.serving == release and guard.state.pythons[release] == str(python)


def test_a_restart_serves_the_recorded_release_even_after_head_moved(
    settings: Settings, source: Path, first: tuple[str, list[str]]
) -> None:
    release, _ = first
    (source / "README.md").write_text("# a later commit\n")
    git(source, "commit", "-qam", "a later commit")
    lines: list[str] = []
    assert ensure_serving_release(Guard(settings), source_dir=source, progress=lines.append) == release
    assert lines == [] and len(list_records(settings.data_dir.resolve())) == 1


def test_a_lost_folder_of_the_recorded_release_is_rebuilt_from_its_commit(
    settings: Settings, source: Path, first: tuple[str, list[str]]
) -> None:
    import shutil

    release, _ = first
    folder = settings.data_dir.resolve() / "releases" / release
    shutil.rmtree(folder)
    with pytest.raises(ReleaseError, match=f"{release} is recorded as serving but its folder"):
        ensure_serving_release(Guard(settings), source_dir=None, progress=lambda line: None)
    lines: list[str] = []
    assert ensure_serving_release(Guard(settings), source_dir=source, progress=lines.append) == release
    assert (folder / "venv" / "bin" / "python").exists()
    assert any("rebuilding" in line for line in lines)


def test_a_failed_first_build_names_the_step_and_starts_nothing(tmp_path: Path, source: Path) -> None:
    broken = tmp_path / "broken"
    git(tmp_path, "clone", "-q", str(source), str(broken))
    (broken / "pyproject.toml").write_text("[project\nname = 'x'\n")
    git(broken, "-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-qam", "break it")
    (broken / "src" / "steadylink" / "__init__.py").write_text("dirty = True\n")
    lines: list[str] = []
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ReleaseError, match="step 'install' failed.*nothing was started") as caught:
        ensure_serving_release(Guard(settings), source_dir=broken, progress=lines.append)
    assert "Traceback" not in str(caught.value)
    assert any("uncommitted changes" in line for line in lines)
    assert Guard(settings).state.serving is None
    assert list_records(settings.data_dir.resolve()) == []


def test_without_a_source_the_first_release_is_a_wheel_of_the_installed_package(workdir: Path) -> None:
    assert installed_package_dir() == ROOT
    settings = Settings(data_dir=workdir / "data")  # uv's cache is warm from the first build
    (settings.data_dir / "run" / "guard.json").unlink()
    for record in list_records(settings.data_dir.resolve()):
        (settings.data_dir / "records" / f"{record.id}.json").unlink()
    lines: list[str] = []
    release = ensure_serving_release(Guard(settings), source_dir=None, progress=lines.append)
    [record] = list_records(settings.data_dir.resolve())
    assert record.id == release and record.ref.endswith("(installed)") and len(record.sha) == 64
    assert release.endswith(record.sha[:12])
    assert any(path.suffix == ".whl" for path in (settings.data_dir / "releases" / release).iterdir())
    (settings.data_dir / "run" / "guard.json").unlink()  # a lost state file: the record still says
    again: list[str] = []
    assert ensure_serving_release(Guard(settings), source_dir=None, progress=again.append) == release

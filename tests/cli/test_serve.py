"""``steadylink serve``: the granian command as data, and the checks before handing over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from steadylink.cli.serve import (
    build_serve_plan,
    check_port_free,
    check_socket_path,
    fresh_metrics_dir,
    granian_executable,
)
from steadylink.errors import Conflict
from steadylink.links.spool import VisitSpool, visit_line_tail
from steadylink.settings import Settings

from .conftest import Invoke


def test_plan_for_host_and_port(settings: Settings, tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    plan = build_serve_plan(settings, host="0.0.0.0", port=9000, uds=None, workers=1, python=str(python))
    assert plan.argv == [
        str(python), "-m", "granian",
        "--interface", "rsgi", "--loop", "uvloop", "--workers", "1",
        "--host", "0.0.0.0", "--port", "9000",
        "--no-ws", "--http", "1", "--respawn-failed-workers", "--log-level", "info",
        "steadylink.web.app:app",
    ]  # fmt: skip
    assert plan.env == {
        "STEADYLINK_DATA_DIR": str(settings.data_dir.absolute()),
        "STEADYLINK_RELEASE_ID": "dev",
    }


def test_plan_for_a_socket_with_workers_and_a_database(settings: Settings, tmp_path: Path) -> None:
    pg = settings.with_overrides(database="postgresql://db/links")
    metrics = tmp_path / "metrics"
    config = tmp_path / "steadylink.toml"
    plan = build_serve_plan(
        pg, host="ignored", port=1, uds=tmp_path / "app.sock", workers=4, config=config, metrics_dir=metrics
    )
    argv = plan.argv
    assert argv[argv.index("--workers") + 1] == "4"
    assert argv[argv.index("--uds") + 1] == str(tmp_path / "app.sock")
    assert "--host" not in argv and "--port" not in argv
    assert plan.env["STEADYLINK_DATABASE"] == "postgresql://db/links"
    assert plan.env["STEADYLINK_CONFIG"] == str(config)
    assert plan.env["PROMETHEUS_MULTIPROC_DIR"] == str(metrics)


def test_granian_beside_the_interpreter_is_preferred(tmp_path: Path) -> None:
    (tmp_path / "granian").write_text("")
    assert granian_executable(str(tmp_path / "python")) == [str(tmp_path / "granian")]


def test_busy_port_is_one_sentence(cli: Invoke) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("serve", "--port", str(port))
    assert result.exit_code == 2
    assert result.stderr == f"error: port {port} is in use; pick another with --port\n"


def test_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_port_free("127.0.0.1", port)


def test_stale_socket_is_removed_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(Conflict, match="in use"):
            check_socket_path(path)
    assert path.exists()  # closed now, nobody listens: stale
    check_socket_path(path)
    assert not path.exists()


def test_a_file_in_the_way_of_the_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(Conflict, match="not a socket"):
        check_socket_path(path)
    assert path.read_text() == "mine"


def test_compact_once_folds_the_waiting_visits(cli: Invoke, data_dir: Path) -> None:
    created = cli("links", "create", "https://example.com/", "--code", "counted")
    assert created.exit_code == 0, created.output
    VisitSpool(data_dir / "visits").write(("counted" + visit_line_tail("2026-01-01", "", "curl", False)) * 3)
    result = cli("compact", "--once")
    assert result.exit_code == 0, result.output
    assert "folded 3 visits" in result.output
    shown = cli("links", "show", "counted", "--json")
    assert json.loads(shown.stdout)["visits"] == 3
    assert VisitSpool(data_dir / "visits").waiting() == []


def test_compact_once_with_the_database_down_fails_and_keeps_the_visits(cli: Invoke, data_dir: Path) -> None:
    spool = VisitSpool(data_dir / "visits")
    spool.write("counted" + visit_line_tail("2026-01-01", "", "curl", False))
    result = cli("compact", "--once", database="postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code != 0
    assert "visit compaction failed" in result.output and "nothing is lost" in result.output
    assert "Traceback" not in result.output
    assert len(spool.waiting()) == 1


def test_metrics_files_live_in_memory_and_gone_servers_leave_none(tmp_path: Path) -> None:
    """In the data folder they grew on a full disk, and every worker died of SIGBUS."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    parent = tmp_path / f"steadylink-metrics-{os.getuid()}"
    stale = parent / f"serve-{gone.pid}-abc"
    live = parent / f"serve-{os.getpid()}-def"
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "counter_1.db").write_bytes(b"\0" * 4096)
    made = fresh_metrics_dir(under=tmp_path)
    assert made.parent == parent and made.name.startswith(f"serve-{os.getpid()}-")
    assert list(made.iterdir()) == []
    assert not stale.exists() and live.exists()  # a running server's files are its own
    default = fresh_metrics_dir()
    try:
        if Path("/dev/shm").is_dir():
            assert default.is_relative_to("/dev/shm")
    finally:
        default.rmdir()

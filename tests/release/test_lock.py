import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import Conflict
from steadylink.release import acquire_lock, read_lock_holder

HOLD_LOCK = """
import sys
from pathlib import Path
from steadylink.clock import SystemClock
from steadylink.release import acquire_lock

lock = acquire_lock(Path(sys.argv[1]), holder="ci-bot", message="deploy v2", clock=SystemClock())
print("locked", flush=True)
sys.stdin.read()
"""


def test_second_acquire_is_refused_naming_the_holder(tmp_path: Path) -> None:
    clock = FakeClock()
    with (
        acquire_lock(tmp_path, holder="alice", message="deploy v2", clock=clock),
        pytest.raises(Conflict) as refused,
    ):
        acquire_lock(tmp_path, holder="bob", message="hotfix", clock=clock)
    message = refused.value.message
    assert "deploy lock held by alice since 2026-01-01T00:00:00+00:00: deploy v2" in message
    assert refused.value.exit_code == 2


def test_lock_is_free_again_after_the_with_block(tmp_path: Path) -> None:
    clock = FakeClock()
    with acquire_lock(tmp_path, holder="alice", message="first", clock=clock) as lock:
        assert lock.is_held
        assert read_lock_holder(tmp_path) == lock.note
    assert not lock.is_held
    assert read_lock_holder(tmp_path) is None
    with acquire_lock(tmp_path, holder="bob", message="second", clock=clock) as again:
        assert again.note.holder == "bob"
        assert again.note.pid == os.getpid()


def test_release_twice_is_harmless(tmp_path: Path) -> None:
    lock = acquire_lock(tmp_path, holder="alice", message="", clock=FakeClock())
    lock.release()
    lock.release()
    assert read_lock_holder(tmp_path) is None


def test_lock_of_a_killed_holder_frees_itself(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        note = read_lock_holder(tmp_path)
        assert note is not None
        assert (note.holder, note.pid, note.message) == ("ci-bot", holder.pid, "deploy v2")
        with pytest.raises(Conflict, match="held by ci-bot"):
            acquire_lock(tmp_path, holder="alice", message="mine", clock=FakeClock())
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    # The dead holder's note is still in the file, but the flock died with it.
    assert (tmp_path / "deploy.lock").read_text()
    with acquire_lock(tmp_path, holder="alice", message="mine", clock=FakeClock()) as lock:
        assert lock.note.holder == "alice"
        assert read_lock_holder(tmp_path) == lock.note

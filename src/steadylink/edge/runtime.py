"""A small client for HAProxy's runtime API (the admin stats socket).

Commands are plain strings built by pure functions; ``RuntimeClient`` sends
one command per connection over the unix socket (about 0.3-0.7 ms here) and
turns HAProxy's error text into an ``EdgeError``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge.config import BACKEND, MAX_WEIGHT, SlotState, name_fallback, name_slot
from steadylink.edge.figures import ServerStats, parse_server_stats
from steadylink.errors import EdgeError, InvalidInput

SLOT_STATES: tuple[SlotState, ...] = ("ready", "drain", "maint")
SHOW_SERVER_STATS = f"show stat {BACKEND} 4 -1"
SHOW_SERVERS_STATE = "show servers state"


def build_set_weight(slot: int, weight: int) -> str:
    if not 0 <= weight <= MAX_WEIGHT:
        raise InvalidInput(f"weight must be between 0 and {MAX_WEIGHT}, got {weight}.", field="weight")
    return f"set weight {BACKEND}/{name_slot(slot)} {weight}"


def build_set_state(slot: int, state: str, *, fallback: bool = False) -> str:
    if state not in SLOT_STATES:
        raise InvalidInput(f"state must be one of {', '.join(SLOT_STATES)}, got {state!r}.", field="state")
    return f"set server {BACKEND}/{(name_fallback if fallback else name_slot)(slot)} state {state}"


class RuntimeClient:
    """Talks to one HAProxy through its admin socket."""

    def __init__(self, socket_path: Path, *, timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def run(self, command: str) -> str:
        """Send one command and return HAProxy's whole answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(command.encode() + b"\n")
                # The master CLI keeps the connection open until it sees EOF.
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise _no_answer(self.socket_path, exc) from exc
        return b"".join(chunks).decode(errors="replace")

    def run_action(self, command: str) -> None:
        """Run a command that answers nothing on success."""
        answer = self.run(command).strip()
        if answer:
            raise EdgeError(f"HAProxy refused {command!r}: {answer}")

    def set_weight(self, slot: int, weight: int) -> None:
        self.run_action(build_set_weight(slot, weight))

    def set_state(self, slot: int, state: SlotState) -> None:
        self.run_action(build_set_state(slot, state))

    def set_fallback(self, serving: int | None, slots: int) -> None:
        """Make ``serving``'s fallback server the ready one (``edge/config.py``); the others maint.

        An HAProxy started from an older config has no fallback servers: nothing to
        set there (its next restart or reload writes them).
        """
        wanted = [(slot, "ready" if slot == serving else "maint") for slot in range(slots)]
        for slot, state in sorted(wanted, key=lambda w: w[1] != "ready"):
            answer = self.run(build_set_state(slot, state, fallback=True)).strip()
            if answer.startswith("No such server"):
                return
            if answer:
                raise EdgeError(f"HAProxy refused a fallback's state: {answer}")

    def server_stats(self) -> dict[int, ServerStats]:
        answer = self.run(SHOW_SERVER_STATS)
        if not answer.startswith("# pxname"):
            raise EdgeError(f"HAProxy answered {SHOW_SERVER_STATS!r} with: {answer.strip()[:200]}")
        return parse_server_stats(answer)

    def dump_servers_state(self) -> str:
        """The ``show servers state`` text, the format ``server-state-file`` loads."""
        answer = self.run(SHOW_SERVERS_STATE)
        if not answer.startswith("1\n"):
            raise EdgeError(f"HAProxy answered {SHOW_SERVERS_STATE!r} with: {answer.strip()[:200]}")
        return answer

    def session(self, *, timeout: float | None = None) -> RuntimeSession:
        """One connection for many commands (interactive mode): map changes and loads."""
        return RuntimeSession(self.socket_path, timeout=timeout or self.timeout)

    def worker_pid(self) -> int:
        """The PID of the HAProxy worker answering: it changes at each reload or restart."""
        for line in self.run("show info").splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":", 1)[1])
        raise EdgeError(f"HAProxy's runtime socket {self.socket_path} gave no Pid in 'show info'.")

    def is_answering(self) -> bool:
        try:
            return self.run("show info").startswith("Name:")
        except EdgeError:
            return False


def wait_for_slot(
    client: RuntimeClient,
    slot: int,
    is_done: Callable[[ServerStats], bool],
    *,
    timeout: float,
    clock: Clock | None = None,
    interval: float = 0.05,
    sleep: Callable[[float], None] | None = None,
) -> ServerStats:
    """Poll ``show stat`` until ``is_done(slot's stats)``; EdgeError at the deadline."""
    clock = clock or SystemClock()
    sleep = sleep or time.sleep
    deadline = clock.monotonic() + timeout
    while True:
        stats = client.server_stats()[slot]
        if is_done(stats):
            return stats
        if clock.monotonic() >= deadline:
            raise EdgeError(
                f"Slot {name_slot(slot)} did not reach the expected state within {timeout:g}s "
                f"(status {stats.status}, check {stats.check_status})."
            )
        sleep(interval)


class RuntimeSession:
    """A runtime API connection in interactive mode: one command after another, no reconnects.

    In this mode HAProxy ends every answer with the prompt ``"\n> "`` and
    prompts ``"+ "`` for each payload line, which ``run`` removes.
    """

    def __init__(self, socket_path: Path, *, timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(socket_path))
            self._sock.sendall(b"prompt\n")
            self._answer()
        except OSError as exc:
            self._sock.close()
            raise _no_answer(socket_path, exc) from exc

    def __enter__(self) -> RuntimeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, command: str) -> str:
        try:
            self._sock.sendall(command.encode() + b"\n")
            return self._answer()
        except OSError as exc:
            raise _no_answer(self.socket_path, exc) from exc

    def run_action(self, command: str) -> None:
        answer = self.run(command).strip()
        if answer:
            raise EdgeError(f"HAProxy refused {command.splitlines()[0]!r}: {answer[:300]}")

    def close(self) -> None:
        self._sock.close()

    def _answer(self) -> str:
        buf = b""
        while not buf.endswith(b"\n> "):
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("HAProxy closed the runtime connection")
            buf += chunk
        return buf[:-2].decode(errors="replace").lstrip("+ ")


def _no_answer(path: Path, exc: OSError) -> EdgeError:
    return EdgeError(
        f"HAProxy's runtime socket {path} did not answer ({exc}); "
        "is the edge running? Check `steadylink status`."
    )

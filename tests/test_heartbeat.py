"""A worker's beat file: touched while its loop turns, gone when it stops, its age readable."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from steadylink import heartbeat


def test_a_beating_loop_keeps_its_file_fresh_and_removes_it_when_it_stops(tmp_path: Path) -> None:
    turns = asyncio.Queue[float]()

    async def one_turn(seconds: float) -> None:  # the loop's sleep, without the waiting
        await turns.put(seconds)
        await asyncio.sleep(0)

    async def run() -> float:
        task = asyncio.create_task(heartbeat.beat(tmp_path, pid=4242, sleep=one_turn))
        assert await turns.get() == heartbeat.BEAT_SECONDS  # the first beat is at once
        path = heartbeat.beat_dir(tmp_path) / "4242"
        assert path.exists()
        os.utime(path, (1.0, 1.0))  # as if the loop had stopped long ago
        await turns.get()  # the next beat makes it fresh again
        age = heartbeat.beat_ages(tmp_path, [4242])[4242]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not path.exists()
        return age

    assert asyncio.run(run()) < 5


def test_ages_are_read_only_for_workers_that_beat(tmp_path: Path) -> None:
    beats = heartbeat.beat_dir(tmp_path)
    beats.mkdir(parents=True)
    (beats / "11").touch()
    os.utime(beats / "11", (1000.0, 1000.0))
    assert heartbeat.beat_ages(tmp_path, [11, 12], now=1007.5) == {11: 7.5}  # 12: an older release, not judged

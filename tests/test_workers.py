"""Worker processes of the app's pool: Ctrl-C in a terminal reaches every process of the group, and
a worker leaves it to the app process, which shuts the pool down, instead of dying with a stack
trace of its own."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from smartapp.workers import WorkerPool


async def test_a_worker_ignores_ctrl_c_sent_to_the_whole_process_group(
    capfd: pytest.CaptureFixture[str],
) -> None:
    pool = WorkerPool(1, warm_up=None)
    try:
        worker = await pool.run(os.getpid)
        assert worker != os.getpid()
        os.kill(worker, signal.SIGINT)
        await asyncio.sleep(1.0)
        assert await pool.run(os.getpid) == worker  # the same worker, still serving
    finally:
        pool.close()
    assert "KeyboardInterrupt" not in capfd.readouterr().err

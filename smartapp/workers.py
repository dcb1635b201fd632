"""Spawned worker processes for CPU-bound work (the engine, R4B validation), so one app process
can use every core: pure-Python work in threads queues behind the GIL. Workers are spawned, not
forked (the app process runs threads), watch their parent so they never outlive the app, leave
Ctrl-C to it, and a broken pool falls back to a thread for that call."""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from smartapp.heap import settle

T = TypeVar("T")


def _watch_parent(parent: int, warm_up: Callable[[], None] | None) -> None:
    # Ctrl-C in a terminal reaches every process of its group: the app process shuts the pool
    # down, and a worker interrupted on its own would only die with a stack trace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # If the app process is killed, the pool's pipes do not always wake an idle worker.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    if warm_up is not None:
        warm_up()
    settle()


class WorkerPool:
    def __init__(self, workers: int, warm_up: Callable[[], None] | None = None) -> None:
        self._workers = workers
        self._warm_up = warm_up
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._workers

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_watch_parent,
                    initargs=(os.getpid(), self._warm_up),
                )
                atexit.register(self.close)
            return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker process (in a thread when the pool has no workers or broke)."""
        if self._workers <= 0:
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), fn, *args)
        except BrokenProcessPool:
            # A worker died (e.g. killed for memory): this call in a thread, a new pool next time.
            self.close()
            return await asyncio.to_thread(fn, *args)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def _warm_validation() -> None:
    """Every R4B model a record read validates against, imported now, so that `settle` sets the
    classes aside with the rest."""
    from fhirmaps.r4b import model_class
    from fhirmaps.read import PATIENT_TYPES

    for resource_type in sorted(PATIENT_TYPES):
        model_class(resource_type)


# One worker validates FHIR pages while the app process waits on the network (chart_reader).
VALIDATION_POOL = WorkerPool(1, warm_up=_warm_validation)

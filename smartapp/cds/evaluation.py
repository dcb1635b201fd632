"""Running the engine for hook calls in worker processes.

The engine is pure Python and CPU-bound (about 100-200 ms per chart), so in one process ten
concurrent hook calls queue behind the GIL. A small process pool (one worker per CPU) lets one
app process use every core. Workers are spawned, not forked: the app process runs threads.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from typing import Any

from fhirmaps.context import warm
from smartapp.cds.fetch import HookRecord
from smartapp.engine import evaluate_resources


def evaluate(record: HookRecord, patient_id: str, as_of: date) -> dict[str, Any]:
    """The engine's result for the hook's patient (design-brief JSON)."""
    results = evaluate_resources(record.resources, as_of=as_of, attachments=record.attachments, unavailable=record.unavailable)
    wanted = f"Patient/{patient_id}"
    for result in results:
        if result.patient == wanted:
            return result.to_json()
    return {"patient": wanted, "time_critical": None, "findings": [], "data_issues": []}


def _start_worker(parent: int) -> None:
    # A worker must not outlive the app: if the app process is killed, the pool's pipes do not
    # always wake an idle worker, so each worker watches its parent.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    # Loads the NLP pipeline (seconds) when the worker starts, not on its first hook call.
    warm()


class Evaluator:
    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(os.getpid(),))
            atexit.register(self.close)
        return self._pool

    async def evaluate(self, record: HookRecord, patient_id: str, as_of: date) -> dict[str, Any]:
        if self._workers <= 1:
            return await asyncio.to_thread(evaluate, record, patient_id, as_of)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), evaluate, record, patient_id, as_of)
        except BrokenProcessPool:
            # A worker died (e.g. killed for memory): answer this call in a thread, start a new pool next time.
            self.close()
            return await asyncio.to_thread(evaluate, record, patient_id, as_of)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

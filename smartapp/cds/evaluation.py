"""Running the engine for hook calls in worker processes.

The engine is pure Python and CPU-bound (about 100-200 ms per chart), so in one process ten
concurrent hook calls queue behind the GIL. A small process pool (one worker per CPU) lets one
app process use every core. Workers are spawned, not forked: the app process runs threads.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import date

from fhirmaps.context import warm
from smartapp.cds.fetch import HookRecord
from smartapp.engine import PatientNotInInput, evaluate_patient
from smartapp.findings import PatientResult
from smartapp.warmup import warm_engine, warmup_chart
from smartapp.workers import WorkerPool


def warm_worker() -> None:
    """What a worker's first hook call would otherwise pay: the NLP model, then one evaluation
    (code maps, compiled patterns, lazy imports, R4B models)."""
    warm()
    warm_engine(*warmup_chart())


def _worker_pid(hold_seconds: float) -> int:
    time.sleep(hold_seconds)  # held, so that concurrent calls land on different workers
    return os.getpid()


def evaluate(record: HookRecord, patient_id: str, as_of: date) -> PatientResult:
    """The engine's result for the hook's patient."""
    wanted = f"Patient/{patient_id}"
    try:
        return evaluate_patient(
            record.resources,
            as_of=as_of,
            attachments=record.attachments,
            unavailable=record.unavailable,
            patient=wanted,
        )
    except PatientNotInInput:
        return PatientResult(patient=wanted)


class Evaluator:
    """Evaluates hook records in a spawned pool, one worker per CPU (see smartapp/workers.py)."""

    def __init__(self, workers: int | None = None) -> None:
        count = workers if workers is not None else (os.cpu_count() or 1)
        # One worker gains nothing over a thread: run in a thread then.
        self._pool = WorkerPool(count if count > 1 else 0, warm_up=warm_worker)
        self.ready_workers: set[int] = set()

    async def start(self, timeout_seconds: float = 120.0) -> None:
        """Spawn and warm every worker now (the app does it before /healthz answers): the first
        hook calls after start-up would otherwise wait seconds for them."""
        if self._pool.workers <= 0:
            return  # runs in the app process, which the app warms itself
        deadline = time.monotonic() + timeout_seconds
        while len(self.ready_workers) < self._pool.workers and time.monotonic() < deadline:
            calls = (self._pool.run(_worker_pid, 0.2) for _ in range(self._pool.workers))
            self.ready_workers.update(await asyncio.gather(*calls))

    async def evaluate(self, record: HookRecord, patient_id: str, as_of: date) -> PatientResult:
        return await self._pool.run(evaluate, record, patient_id, as_of)

    def close(self) -> None:
        self._pool.close()

"""Running the engine for hook calls in worker processes.

The engine is pure Python and CPU-bound (about 100-200 ms per chart), so in one process ten
concurrent hook calls queue behind the GIL. A small process pool (one worker per CPU) lets one
app process use every core. Workers are spawned, not forked: the app process runs threads.
"""

from __future__ import annotations

import os
from datetime import date

from fhirmaps.context import warm
from smartapp.cds.fetch import HookRecord
from smartapp.engine import PatientNotInInput, evaluate_patient
from smartapp.findings import PatientResult
from smartapp.workers import WorkerPool


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
        self._pool = WorkerPool(count if count > 1 else 0, warm_up=warm)

    async def evaluate(self, record: HookRecord, patient_id: str, as_of: date) -> PatientResult:
        return await self._pool.run(evaluate, record, patient_id, as_of)

    def close(self) -> None:
        self._pool.close()

"""The engine runs in worker processes and gives the same result as in-process; a dead worker
does not break the service."""

from __future__ import annotations

import json
import os
import signal
from datetime import date

from smartapp.cds.evaluation import Evaluator, evaluate
from smartapp.cds.fetch import HookRecord
from tests.cds.conftest import AS_OF, Stack, patient_resources


async def test_pool_result_equals_in_process_result_and_survives_a_killed_worker() -> None:
    record = HookRecord(resources=patient_resources("demo-aml"))
    expected = evaluate(record, "demo-aml", AS_OF)
    evaluator = Evaluator(workers=2)
    try:
        assert await evaluator.evaluate(record, "demo-aml", AS_OF) == expected
        pool = evaluator._pool._executor()  # noqa: SLF001
        for pid in list(pool._processes):  # noqa: SLF001 - simulate a worker killed by the OS
            os.kill(pid, signal.SIGKILL)
        assert await evaluator.evaluate(record, "demo-aml", AS_OF) == expected
        assert await evaluator.evaluate(record, "demo-aml", AS_OF) == expected  # a fresh pool
    finally:
        evaluator.close()
    assert json.dumps(expected.to_json())  # plain JSON for the API


def test_missing_patient_gives_an_empty_result() -> None:
    assert evaluate(HookRecord(), "nobody", date(2026, 11, 25)).findings == []


async def test_start_spawns_and_warms_every_worker_before_the_first_call() -> None:
    evaluator = Evaluator(workers=2)
    try:
        await evaluator.start()
        pool = evaluator._pool._executor()  # noqa: SLF001
        assert len(evaluator.ready_workers) == 2
        assert evaluator.ready_workers == set(pool._processes)  # noqa: SLF001 - both spawned, both answered
    finally:
        evaluator.close()


def test_the_app_starts_the_hook_workers_when_cds_clients_are_configured(stack: Stack) -> None:
    evaluator = stack.app.state.cds_evaluator
    assert evaluator is not None
    cpus = os.cpu_count() or 1
    assert len(evaluator.ready_workers) == (cpus if cpus > 1 else 0)  # one CPU: evaluated in a thread

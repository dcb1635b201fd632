"""The start-up heap is set aside from the garbage collector: in the app, its worker pools and the
screening workers (smartapp/heap.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from smartapp.heap import settle
from smartapp.workers import WorkerPool
from tests.web.conftest import Stack, start_stack


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_collects_garbage_and_freezes_what_is_left(unfrozen: None) -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    kept = {"kept": True}
    del cycle
    assert gc.get_freeze_count() == 0
    settle()
    assert gc.get_freeze_count() > 0
    assert gc.garbage == []
    assert kept["kept"]


def test_a_pool_worker_settles_after_its_warm_up() -> None:
    pool = WorkerPool(1, warm_up=None)
    try:
        assert asyncio.run(pool.run(gc.get_freeze_count)) > 0
    finally:
        pool.close()


def test_the_app_settles_before_it_answers_healthz(unfrozen: None, tmp_path: Path) -> None:
    stacks = start_stack(tmp_path)
    stack: Stack = next(stacks)
    try:
        assert httpx2.get(stack.app + "/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
    finally:
        stacks.close()

"""Dask distributed: an embedded LocalCluster (one single-threaded process per core) or an existing
scheduler, and the bounded submission of bucket tasks whose results stream back as they finish."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, as_completed

from smartapp.screening.blocks import Task, screen_blocks
from smartapp.screening.bucket import screen_bucket


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    """A client of `scheduler`, or of a LocalCluster with `workers` processes (default: every core).
    Client and cluster are closed on the way out, so no worker outlives the run."""
    if scheduler:
        client = Client(scheduler, timeout="30s")  # type: ignore[no-untyped-call]
        try:
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    cluster = local_cluster(workers or os.cpu_count() or 1)
    try:
        client = Client(cluster)  # type: ignore[no-untyped-call]
        try:
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
    finally:
        cluster.close()


def local_cluster(workers: int) -> LocalCluster:
    """The embedded cluster: `workers` single-threaded processes. The scheduler's HTTP server
    (health, dashboard) binds a free port (dashboard_address ":0"), never a fixed 8787 that a
    second screen or another cluster on the machine already holds. The workers' statistical
    profiler is off: it samples each worker's stack 100 times a second for the dashboard's
    profile page, and measured (docs/performance.md) it took about a sixth of a worker's CPU.
    The worker processes ignore Ctrl-C (`_ctrl_c_left_here`)."""
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),  # read when the nannies start
        _ctrl_c_left_here(),
    ):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )  # type: ignore[no-untyped-call]


@contextmanager
def _ctrl_c_left_here() -> Iterator[None]:
    """Processes started inside ignore SIGINT. Ctrl-C in a terminal reaches every process of its
    group; this process stops the run with one line and closes the cluster, where each worker
    interrupted on its own dies with pages of stack traces. A signal ignored at exec stays ignored
    in the new interpreter (and in the worker a nanny starts again after a crash). Only the main
    thread may change a signal's handling; from another thread nothing changes. A Ctrl-C while the
    cluster starts (a few seconds) is ignored too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def worker_count(client: Client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_buckets(
    client: Client,
    buckets: Iterable[Path],
    side: Path,
    as_of: date,
    rare_definition: str,
    on_failure: Callable[[Path, BaseException], None],
) -> Iterator[dict[str, Any]]:
    """Results of `screen_bucket` in completion order, with at most 2 tasks per worker in flight.
    Buckets are taken from `buckets` as tasks are submitted (it may still be hydrating later ones)."""

    def submit(bucket: Path) -> Future[dict[str, Any]]:
        return client.submit(screen_bucket, str(bucket), str(side), as_of, rare_definition, pure=False)

    return _bounded(client, buckets, submit, on_failure)


def run_chains(
    client: Client,
    tasks: Iterable[Task],
    as_of: date,
    rare_definition: str,
    on_failure: Callable[[Path, BaseException], None],
) -> Iterator[dict[str, Any]]:
    """The same for files of patient blocks (`screen_blocks`): a task per chain, or per byte range
    of a large file (blocks.tasks_at), taken from `tasks` as they arrive (the export may still be
    writing later files)."""

    def submit(task: Task) -> Future[dict[str, Any]]:
        chain, start, end = task
        paths = [str(path) for path in chain]
        return client.submit(screen_blocks, paths, as_of, rare_definition, start, end, pure=False)

    return _bounded(client, tasks, submit, on_failure, lambda task: task[0][0])


def _bounded(
    client: Client,
    items: Iterable[Any],
    submit: Callable[[Any], Future[dict[str, Any]]],
    on_failure: Callable[[Path, BaseException], None],
    name: Callable[[Any], Path] = lambda item: item,
) -> Iterator[dict[str, Any]]:
    limit = 2 * worker_count(client)
    pending = iter(items)
    running = as_completed()  # type: ignore[no-untyped-call]
    where: dict[Any, Path] = {}

    def submit_next() -> None:
        item = next(pending, None)
        if item is not None:
            future = submit(item)
            where[future.key] = name(item)
            running.add(future)  # type: ignore[no-untyped-call]

    for _ in range(limit):
        submit_next()
    for future in running:
        label = where.pop(future.key)
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost task is reported, the others go on
            on_failure(label, exc)
        else:
            yield result
        finally:
            future.release()
        submit_next()

"""What the screening benchmarks share (screen_throughput.py, screen_e2e.py): the warmed Dask
LocalCluster they screen on, peak-RSS sampling of the processes involved, and the machine."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psutil
from distributed import Client

from smartapp.screening.cluster import local_cluster

# The screens' as-of date: the synthetic charts are not date-shifted, so the figures do not move
# with the day the benchmark runs.
AS_OF = date(2026, 3, 1)


class RssSampler:
    """Peak RSS of named processes, sampled every `interval` seconds in a background thread.
    Processes may be added while it runs; a process that has exited keeps the peak it reached.
    Processes tracked with the same `group` are also summed sample by sample (a cluster's workers)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self.group_peaks: dict[str, int] = {}
        self.latest: dict[str, int] = {}
        self._tracked: dict[str, tuple[psutil.Process, str | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def track(self, name: str, pid: int, group: str | None = None) -> None:
        process = psutil.Process(pid)
        with self._lock:
            self._tracked[name] = (process, group)
        self._sample()

    def reset(self) -> None:
        """Peaks start afresh (the processes stay tracked)."""
        with self._lock:
            self.peaks.clear()
            self.group_peaks.clear()
        self._sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)
        self._sample()

    def _sample(self) -> None:
        with self._lock:
            sums: dict[str, int] = {}
            for name, (process, group) in self._tracked.items():
                try:
                    rss = int(process.memory_info().rss)
                except psutil.Error:
                    continue
                self.latest[name] = rss
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
                if group is not None:
                    sums[group] = sums.get(group, 0) + rss
            for group, total in sums.items():
                self.group_peaks[group] = max(self.group_peaks.get(group, 0), total)


def mib(value: int) -> float:
    return round(value / 2**20, 1)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@contextmanager
def warm_cluster(workers: int) -> Iterator[tuple[Client, float]]:
    """The LocalCluster `secondlook screen` starts (`local_cluster`: process workers, one thread each) whose
    workers have done the product's own once-per-worker warm-up (the NLP model loaded, then the
    start-up heap set aside: `bucket.settle_worker`, which a run's first task would otherwise do
    on the clock); yields the client and the seconds that start-up took."""
    t0 = time.perf_counter()
    with local_cluster(workers) as cluster, Client(cluster) as client:
        from smartapp.screening.bucket import settle_worker

        client.run(settle_worker)
        yield client, time.perf_counter() - t0


def worker_pids(client: Client) -> list[int]:
    return sorted(client.run(os.getpid).values())


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }

"""Per-launch results (record snapshot + engine evaluation), computed once and shared by the page,
its fragment, the source viewer and the API. Loading starts at the OAuth callback, so the record
is already being read while the browser follows the redirect. A process-local cache only: any
replica can recompute it from the EHR.

Memory: a record's resources as Python objects take about ten times their JSON size (0.5 MiB for
a 120-resource demo chart, tens of MiB for a large record), and up to MAX_ENTRIES launches are
kept. So only the HOT_ENTRIES most recently used keep them unpacked; an entry that goes cold
holds them as compressed JSON (packed then, once) and is unpacked again when a request needs it.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections import OrderedDict
from typing import Any

from launch.fetch import Gap
from launch.session_clients import SessionClients
from launch.sessions import LaunchSession
from smartapp.chart_reader import ChartSnapshot
from smartapp.findings import PatientResult
from smartapp.web.patient_data import evaluate_snapshot, load_snapshot

TTL_SECONDS = 300.0
# A load during which part of the EHR could not be reached is kept only briefly: the next page
# open after this reads the EHR again instead of showing the outage for five minutes.
FAILED_TTL_SECONDS = 10.0
MAX_ENTRIES = 256
HOT_ENTRIES = 8


class LaunchResults:
    """The evaluation, and the snapshot it was computed from: unpacked while hot, packed once it
    goes cold (not before: packing is not on the path from the callback to the findings)."""

    def __init__(self, snapshot: ChartSnapshot, evaluation: PatientResult) -> None:
        self.evaluation = evaluation
        self._patient_id = snapshot.patient_id
        self._packed: bytes | None = None
        self._gaps = snapshot.gaps
        self._attachments = snapshot.attachments  # bytes: compact already
        self._unpacked: ChartSnapshot | None = snapshot

    @property
    def snapshot(self) -> ChartSnapshot:
        unpacked = self._unpacked
        if unpacked is None:
            assert self._packed is not None  # noqa: S101 - release() packs before it drops
            resources = unpack_resources(self._packed)
            unpacked = ChartSnapshot(self._patient_id, resources, self._gaps, self._attachments)
            self._unpacked = unpacked
        return unpacked

    @property
    def gaps(self) -> list[Gap]:
        return self._gaps

    def release(self) -> None:
        """Pack the resources (the first time) and drop the unpacked ones; a request already
        holding the snapshot keeps its own."""
        unpacked = self._unpacked
        if unpacked is None:
            return
        if self._packed is None:
            self._packed = pack_resources(unpacked.resources)
        self._unpacked = None


def pack_resources(resources: list[dict[str, Any]]) -> bytes:
    return zlib.compress(json.dumps(resources, separators=(",", ":")).encode(), 1)


def unpack_resources(packed: bytes) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = json.loads(zlib.decompress(packed))
    return resources


class HotSet:
    """The `limit` most recently used results keep their snapshot unpacked; the others release it."""

    def __init__(self, limit: int = HOT_ENTRIES) -> None:
        self._limit = limit
        self._recent: OrderedDict[int, LaunchResults] = OrderedDict()

    def touch(self, results: LaunchResults) -> None:
        self._recent[id(results)] = results
        self._recent.move_to_end(id(results))
        while len(self._recent) > self._limit:
            _id, coldest = self._recent.popitem(last=False)
            coldest.release()


class ResultsCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, asyncio.Task[LaunchResults]]] = {}
        self._hot = HotSet()

    def start(self, clients: SessionClients, session: LaunchSession) -> None:
        """Begin loading in the background (no-op when already loading or loaded)."""
        self._task(clients, session)

    async def get(self, clients: SessionClients, session: LaunchSession) -> LaunchResults:
        task = self._task(clients, session)
        try:
            results = await asyncio.shield(task)
        except Exception:
            # A failed load is not cached: the next request tries the EHR again.
            self._entries.pop(_key(session), None)
            raise
        self._hot.touch(results)
        return results

    def _loaded(self, task: asyncio.Task[LaunchResults]) -> None:
        # A load nobody asked for yet (started at the callback) counts as used now.
        if not task.cancelled() and task.exception() is None:
            self._hot.touch(task.result())

    def forget(self, session_id: str) -> None:
        for key in [key for key in self._entries if key.split("|", 1)[0] == session_id]:
            del self._entries[key]

    def _task(self, clients: SessionClients, session: LaunchSession) -> asyncio.Task[LaunchResults]:
        now = time.monotonic()
        entry = self._entries.get(_key(session))
        if entry and now - entry[0] < _ttl(entry[1]):
            return entry[1]
        self._evict(now)
        task = asyncio.get_running_loop().create_task(_load(clients, session))
        task.add_done_callback(_consume_exception)
        task.add_done_callback(self._loaded)
        self._entries[_key(session)] = (now, task)
        return task

    def _evict(self, now: float) -> None:
        for key, (created, _task) in list(self._entries.items()):
            if now - created >= TTL_SECONDS:
                del self._entries[key]
        while len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]


def _ttl(task: asyncio.Task[LaunchResults]) -> float:
    if not task.done():
        return TTL_SECONDS
    if task.cancelled() or task.exception() is not None:
        return 0.0
    failed = any(gap.reason == "fetch_failed" for gap in task.result().gaps)
    return FAILED_TTL_SECONDS if failed else TTL_SECONDS


def _key(session: LaunchSession) -> str:
    # A coordinator's session opens one worklist patient after another: the patient is part of the key.
    return f"{session.id}|{session.patient or ''}"


def _consume_exception(task: asyncio.Task[LaunchResults]) -> None:
    # Background loads may fail before anyone awaits them; the awaiting request reports the error.
    if not task.cancelled():
        task.exception()


async def _load(clients: SessionClients, session: LaunchSession) -> LaunchResults:
    snapshot = await load_snapshot(clients, session)
    # The engine is CPU-bound: keep the event loop free for other requests.
    return await asyncio.to_thread(_evaluate, snapshot)


def _evaluate(snapshot: ChartSnapshot) -> LaunchResults:
    return LaunchResults(snapshot, evaluate_snapshot(snapshot))

"""Per-launch results (record snapshot + engine evaluation), computed once and shared by the page,
its fragment, the source viewer and the API. Loading starts at the OAuth callback, so the record
is already being read while the browser follows the redirect. A process-local cache only: any
replica can recompute it from the EHR."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

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


@dataclass
class LaunchResults:
    snapshot: ChartSnapshot
    evaluation: PatientResult


class ResultsCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, asyncio.Task[LaunchResults]]] = {}

    def start(self, clients: SessionClients, session: LaunchSession) -> None:
        """Begin loading in the background (no-op when already loading or loaded)."""
        self._task(clients, session)

    async def get(self, clients: SessionClients, session: LaunchSession) -> LaunchResults:
        task = self._task(clients, session)
        try:
            return await asyncio.shield(task)
        except Exception:
            # A failed load is not cached: the next request tries the EHR again.
            self._entries.pop(_key(session), None)
            raise

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
    failed = any(gap.reason == "fetch_failed" for gap in task.result().snapshot.gaps)
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
    evaluation = await asyncio.to_thread(evaluate_snapshot, snapshot)
    return LaunchResults(snapshot, evaluation)

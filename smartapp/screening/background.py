"""Work that talks to the EHR (report texts, an export as it arrives), run in a thread with its own
event loop while the calling thread hands what it produces to the cluster (hydrate.py,
block_export.py). A failure in the thread is raised in the calling thread; the calling thread
ending (an error, Ctrl-C) stops the work within STOP_CHECK_SECONDS."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from launch.errors import FhirError, LaunchError

STOP_CHECK_SECONDS = 0.1
T = TypeVar("T")


def produced(
    produce: Callable[[Callable[[T], None], threading.Event], Coroutine[Any, Any, None]],
    failed: Callable[[FhirError | LaunchError], BaseException],
    name: str,
) -> Iterator[T]:
    """What `produce(put, stop)` puts, in order, as it comes. An EHR failure there is raised here as
    `failed(exc)` makes it (a one-line InputError); anything else as it is."""
    ready: queue.Queue[T | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            asyncio.run(produce(ready.put, stop))
        except (FhirError, LaunchError) as exc:
            ready.put(failed(exc))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            ready.put(exc)
        finally:
            ready.put(None)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


async def until_stopped(stop: threading.Event, work: Awaitable[Any]) -> bool:
    """Runs `work` to its end (True; its exception raised) or until `stop` is set (False; cancelled)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
        if stop.is_set():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False
    task.result()
    return True

"""Small test doubles shared by the FHIR client and record tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class StaticTokens:
    """A token source whose token changes each time re-authentication is asked for."""

    def __init__(self) -> None:
        self.reauthentications = 0

    @property
    def current(self) -> str:
        return f"token-{self.reauthentications}"

    async def token(self) -> str:
        return self.current

    async def reauthenticate(self, stale: str | None = None) -> str:
        self.reauthentications += 1
        return self.current


class RecordingSleep:
    """Stands in for asyncio.sleep so retry delays are checked without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "ignored"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition` (e.g. a single-threaded test server has drained abandoned requests)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)

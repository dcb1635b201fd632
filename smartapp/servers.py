"""Runs one or more ASGI apps on uvicorn in the current process (the demo runs two: the EHR and
the app, on two loopback ports, so they are different origins as in a real deployment)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class Served:
    app: Any
    host: str
    port: int


def uvicorn_config(served: Served, log_level: str = "warning") -> uvicorn.Config:
    # access_log off: uvicorn would print query strings carrying `code`, `state` and `launch`.
    return uvicorn.Config(
        served.app,
        host=served.host,
        port=served.port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )


async def serve_all(apps: Sequence[Served], log_level: str = "warning") -> None:
    servers = [uvicorn.Server(uvicorn_config(s, log_level)) for s in apps]
    await asyncio.gather(*(server.serve() for server in servers))

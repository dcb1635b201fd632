"""Dependency aliases so the demo's routes read as declarations. The runtime objects of one demo
EHR live in its `app.state` (tests run several demo EHRs in one process), never in a closure.

The dependencies are `async` so FastAPI calls them on the event loop, as the routes run, rather
than in its thread pool: the in-memory stores are not shared across threads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .authorization_server import SmartAuthorizationServer
from .bulk_export import ExportManager
from .config import DemoEhrConfig
from .records import MemoryStore
from .resource_store import ResourceStore
from .runtime import DemoEhr


async def get_demo_ehr(request: Request) -> DemoEhr:
    ehr: DemoEhr = request.app.state.demo_ehr
    return ehr


Ehr = Annotated[DemoEhr, Depends(get_demo_ehr)]


async def get_config(ehr: Ehr) -> DemoEhrConfig:
    return ehr.config


async def get_memory(ehr: Ehr) -> MemoryStore:
    return ehr.memory


async def get_resources(ehr: Ehr) -> ResourceStore:
    return ehr.resources


async def get_server(ehr: Ehr) -> SmartAuthorizationServer:
    return ehr.server


async def get_exports(ehr: Ehr) -> ExportManager:
    return ehr.exports


Config = Annotated[DemoEhrConfig, Depends(get_config)]
Memory = Annotated[MemoryStore, Depends(get_memory)]
Resources = Annotated[ResourceStore, Depends(get_resources)]
AuthServer = Annotated[SmartAuthorizationServer, Depends(get_server)]
Exports = Annotated[ExportManager, Depends(get_exports)]

"""`create_demo_ehr`: the ASGI app of the embedded demo EHR (SMART authorization + FHIR R4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from authlib.common.security import is_secure_transport
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from . import auth_routes, bulk_routes, ehr_pages, fhir_api
from .authorization_server import SmartAuthorizationServer, generate_signing_key, register_demo_clients
from .bulk_export import ExportManager
from .config import DemoEhrConfig
from .date_shift import days_to, shift_resource
from .fhir_responses import FhirRefusal, refusal_response
from .groups import add_demo_groups
from .large_patient import build_large_patient
from .records import MemoryStore
from .resource_store import ResourceStore, load_patients_dir
from .runtime import DemoEhr
from .staff import add_demo_staff
from .synthetic import add_population

# In this order: the Bulk Data routes come before the generic /fhir/{type}/{id} routes.
ROUTERS = (auth_routes.router, bulk_routes.router, fhir_api.router, ehr_pages.router)


class LatencyMiddleware:
    """Adds the same delay before every response, so benchmarks see a network-like EHR."""

    def __init__(self, app: ASGIApp, latency_ms: int):
        self.app = app
        self.delay = latency_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.delay > 0:
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def load_resources(config: DemoEhrConfig) -> ResourceStore:
    store = ResourceStore()
    shift = days_to(config.stories_on)
    load_patients_dir(store, config.resolved_patients_dir, shift)
    if config.include_large_patient:
        meta = {
            "title": "Benchmark patient — about 2,000 resources",
            "summary": "ER-positive breast cancer on treatment (HER2 IHC 2+ never resolved by ISH), "
            "sized for paging and latency benchmarks.",
            "triggers": ["incomplete-biomarker"],
        }
        store.add_patient_bundle([shift_resource(r, shift) for r in build_large_patient()], meta)
    if config.synthetic_patients:
        add_population(
            store,
            config.synthetic_patients,
            seed=config.synthetic_seed,
            shift_days=shift,
            visit_scale=config.synthetic_visit_scale,
        )
    add_demo_groups(store, config.stories_on or date.today())
    add_demo_staff(store)
    return store


def create_demo_ehr(config: DemoEhrConfig) -> FastAPI:
    if not is_secure_transport(config.origin + "/"):
        raise ValueError("The demo EHR base_url must be https or a loopback http address.")
    memory = MemoryStore()
    register_demo_clients(memory, config.redirect_uris, config)
    server = SmartAuthorizationServer(config, memory, generate_signing_key())
    resources = load_resources(config)
    ehr = DemoEhr(
        config=config,
        memory=memory,
        resources=resources,
        server=server,
        exports=ExportManager(config, resources),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # Stopping (Ctrl-C, SIGTERM): the export files go with the jobs. uvicorn re-raises the
        # signal once it has shut down, so the process may end before any exit handler runs.
        ehr.exports.close()

    app = FastAPI(
        title="SecondLook demo EHR",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={FhirRefusal: refusal_response},
    )
    app.state.demo_ehr = ehr  # reached by the routes through deps.py
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(LatencyMiddleware, latency_ms=config.latency_ms)
    return app

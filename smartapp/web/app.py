"""The app factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from fhirmaps.context import warm
from fhirmaps.r4b import check_batch
from launch.crypto import TokenCipher
from launch.discovery import Discovery
from launch.http import create_http_client
from launch.registry import Registry
from launch.session_clients import SessionClients
from launch.sessions import SessionStore
from launch.tokens import TokenManager
from smartapp.cds import routes as cds_routes
from smartapp.cds.clients import cds_configured
from smartapp.cds.evaluation import Evaluator
from smartapp.config import Settings, get_settings
from smartapp.db import create_engine
from smartapp.heap import settle
from smartapp.housekeeping import purge_every
from smartapp.keyring import token_keys
from smartapp.logs import quiet_url_loggers
from smartapp.packet.directory import load_directory
from smartapp.packet.pdf import add_filters
from smartapp.schema import migrate
from smartapp.warmup import warm_engine, warm_templates, warmup_chart
from smartapp.web.body_limit import BodyLimitMiddleware
from smartapp.web.errors import install_error_handlers
from smartapp.web.results import ResultsCache
from smartapp.web.routes import (
    decisions,
    delivery,
    health,
    jwks,
    launch,
    packet,
    patient,
    referral,
    source,
    style,
    worklist,
    writeback,
)
from smartapp.web.security import SecurityHeadersMiddleware
from smartapp.web.services import AppServices
from smartapp.web.trusted_host import TrustedHostMiddleware, allowed_hosts
from smartapp.workers import VALIDATION_POOL
from smartapp.worklist import tables as worklist_tables  # noqa: F401  (registers the worklist tables)

WEB_DIR = Path(__file__).parent


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=WEB_DIR / "templates")
    add_filters(found.env)
    return found


def load_registry(settings: Settings) -> Registry:
    return Registry.from_file(settings.ehr_config) if settings.ehr_config else Registry([])


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry if registry is not None else load_registry(settings)
    # A site's malformed directory stops the start with the file's problem in words, rather than
    # breaking every packet page later.
    load_directory(settings.packet_directory)
    # Likewise a bad encryption key, before the server starts listening.
    keys = token_keys(settings)
    quiet_url_loggers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cipher = TokenCipher(keys)
        engine = create_engine(settings.database_url, cipher)
        store = SessionStore(engine, cipher, session_ttl_hours=settings.session_ttl_hours)
        await migrate(engine)
        http = create_http_client(timeout=settings.fhir_timeout_seconds)
        discovery = Discovery(http, ttl_seconds=settings.discovery_ttl_seconds)
        tokens = TokenManager(store, registry, discovery, http)
        app.state.services = AppServices(
            settings=settings,
            engine=engine,
            http=http,
            registry=registry,
            discovery=discovery,
            store=store,
            tokens=tokens,
            fhir=SessionClients(http, tokens, registry, settings.fhir_max_concurrency),
            templates=templates(),
            results=ResultsCache(),
        )
        # Warm what the first launch would otherwise pay for, before /healthz answers: the NLP
        # model; the validation worker (spawned now; it imports the R4B models itself, and the
        # warm-up chart teaches it their shapes); then one engine evaluation (code maps, compiled
        # patterns, lazy imports) and the templates; last, the heap is settled (smartapp/heap.py).
        resources, attachments = warmup_chart()
        # With CDS clients configured, the hook's engine workers too (smartapp/cds/evaluation.py).
        evaluator = Evaluator(getattr(app.state, "cds_workers", None)) if cds_configured(settings) else None
        app.state.cds_evaluator = evaluator
        await asyncio.gather(
            asyncio.to_thread(warm),
            VALIDATION_POOL.run(check_batch, resources),
            evaluator.start() if evaluator is not None else asyncio.sleep(0),
        )
        await asyncio.to_thread(warm_engine, resources, attachments)
        warm_templates(app.state.services.templates.env)
        settle()
        housekeeping = asyncio.create_task(purge_every(engine, settings.purge_interval_seconds))
        try:
            yield
        finally:
            housekeeping.cancel()
            if evaluator is not None:
                evaluator.close()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(
        title="SecondLook",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    ancestors = [a for r in registry.all() for a in r.frame_ancestors] + settings.frame_ancestors
    # Added first, so it runs inside the security headers: its 413 carries them too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeadersMiddleware, default_frame_ancestors=ancestors)
    app.add_middleware(TrustedHostMiddleware, hosts=allowed_hosts(settings))
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    for router in (
        health.router,
        jwks.router,
        launch.router,
        patient.router,
        source.router,
        decisions.router,
        style.router,
        cds_routes.router,
        packet.router,
        referral.router,
        delivery.router,
        writeback.router,
        worklist.router,
    ):
        app.include_router(router)
    return app

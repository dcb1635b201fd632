"""Long-lived objects of one app process, created in the lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.discovery import Discovery
from launch.registry import Registry
from launch.session_clients import SessionClients
from launch.sessions import SessionStore
from launch.tokens import TokenManager
from smartapp.config import Settings
from smartapp.web.results import ResultsCache


@dataclass
class AppServices:
    settings: Settings
    engine: AsyncEngine
    http: httpx2.AsyncClient
    registry: Registry
    discovery: Discovery
    store: SessionStore
    tokens: TokenManager
    # FHIR clients for launch sessions (http, tokens, registry and the app's concurrency setting).
    fhir: SessionClients
    templates: Jinja2Templates
    results: ResultsCache

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from smartapp.web.deps import Services

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(services: Services) -> dict[str, str]:
    async with services.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ok"}

"""What every test shares: the development encryption key goes to a temporary config folder
($XDG_CONFIG_HOME) for the whole session, never to the developer's ~/.config (session-scoped, so
that module- and session-scoped app fixtures see it too); `empty_database`, an app database
without tables on SQLite and, where CI provides it, PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from launch.crypto import TokenCipher, generate_key
from smartapp.db import create_engine
from smartapp.schema import target_metadata
from tests.support import database_params


@pytest.fixture(scope="session", autouse=True)
def temporary_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("config-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(home))
        patch.delenv("SECONDLOOK_SECRET_KEY", raising=False)
        patch.delenv("SECONDLOOK_SECRET_KEY_FILE", raising=False)
        yield home


@pytest.fixture(params=database_params())
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database without the app's tables (dropped before and after on PostgreSQL)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else request.param
    await _drop_all(url)
    yield url
    await _drop_all(url)


async def _drop_all(url: str) -> None:
    engine = create_engine(url, TokenCipher([generate_key()]))
    async with engine.begin() as conn:
        for metadata in target_metadata():
            await conn.run_sync(metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()

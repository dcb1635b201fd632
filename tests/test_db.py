"""Start-up schema creation adds columns a newer release introduced to an existing table."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, select, text

from smartapp.db import create_engine, create_tables


def shape(*extra: Column) -> MetaData:
    metadata = MetaData()
    Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)), *extra)
    return metadata


async def test_missing_nullable_column_is_added_and_rows_kept(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    old = shape()
    await create_tables(engine, old)
    async with engine.begin() as conn:
        await conn.execute(insert(old.tables["things"]).values(id=1, name="kept"))
    new = shape(Column("note", String(50), nullable=True))
    await create_tables(engine, new)
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: [col["name"] for col in inspect(c).get_columns("things")])
        row = (await conn.execute(select(new.tables["things"]))).mappings().one()
    assert columns == ["id", "name", "note"]
    assert row["name"] == "kept" and row["note"] is None
    await engine.dispose()


async def test_missing_required_column_asks_for_a_migration(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    await create_tables(engine, shape())
    with pytest.raises(RuntimeError, match="migrate the database"):
        await create_tables(engine, shape(Column("needed", String(5), nullable=False)))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 0
    await engine.dispose()

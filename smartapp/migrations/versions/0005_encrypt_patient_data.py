"""encrypt patient data at rest: free text, names, findings, files and JSON bodies become Fernet tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 17:30:00

The columns become text (a token is ASCII; outside report files stay binary), then every clear
value is encrypted in place with the newest key of the engine's cipher (smartapp.encryption).
The downgrade decrypts every value and restores the old types; a value no configured key decrypts
stops it, naming the table and row. The list below is frozen here on purpose: later changes to
the models do not change what this step did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from smartapp.encryption import dialect_cipher
from smartapp.sealing import SealedColumn, open_values, seal_clear_values

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = ("id",)
_ENTRY = ("source", "patient_id")
# table, primary key, column, type before, nullable
COLUMNS: list[tuple[str, tuple[str, ...], str, sa.types.TypeEngine[Any], bool]] = [
    ("packets", _ID, "body", sa.JSON(), False),
    ("packet_edits", _ID, "changes", sa.JSON(), False),
    ("packet_receipts", _ID, "receipt", sa.JSON(), False),
    ("referral_events", _ID, "note", sa.Text(), False),
    ("referral_events", _ID, "opinion", sa.JSON(), True),
    ("referral_deliveries", _ID, "detail", sa.Text(), False),
    ("referral_deliveries", _ID, "location", sa.String(length=1000), False),
    ("outside_reports", _ID, "name", sa.String(length=200), False),
    ("outside_reports", _ID, "data", sa.LargeBinary(), False),
    ("finding_actions", _ID, "note", sa.Text(), True),
    ("worklist_entries", _ENTRY, "display_name", sa.Text(), True),
    ("worklist_entries", _ENTRY, "birth_date", sa.Date(), True),
    ("worklist_entries", _ENTRY, "result_json", sa.Text(), False),
    ("cds_feedback", _ID, "user_comment", sa.Text(), True),
]
# The partial unique index on packets, for SQLite's table rebuild (reflection may not carry its WHERE).
_ONE_DRAFT = "uq_packets_one_draft"


def _sealed() -> list[SealedColumn]:
    return [
        SealedColumn(table, keys, column, binary=isinstance(before, sa.LargeBinary))
        for table, keys, column, before, _ in COLUMNS
    ]


def _retyped() -> dict[str, list[tuple[str, sa.types.TypeEngine[Any], bool]]]:
    """Per table, the columns whose type changes (text and binary columns keep theirs)."""
    tables: dict[str, list[tuple[str, sa.types.TypeEngine[Any], bool]]] = {}
    for table, _, column, before, nullable in COLUMNS:
        if type(before) not in (sa.Text, sa.LargeBinary):
            tables.setdefault(table, []).append((column, before, nullable))
    return tables


def _alter(to_text: bool) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not postgresql and op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Rebuilding `packets` with foreign keys on would delete every row that references it.
        raise RuntimeError(
            "on SQLite this migration rebuilds tables and needs foreign keys off: run it through "
            "`secondlook migrate` (smartapp.schema.migrate / downgrade), not Alembic directly"
        )
    for table, columns in _retyped().items():
        if not postgresql and table == "packets":
            op.drop_index(_ONE_DRAFT, table_name="packets")
        with op.batch_alter_table(table) as batch:
            for column, before, nullable in columns:
                new, old = (sa.Text(), before) if to_text else (before, sa.Text())
                if postgresql:
                    cast = f"{column}::{new.compile(dialect=op.get_bind().dialect)}"
                    batch.alter_column(
                        column,
                        type_=new,
                        existing_type=old,
                        existing_nullable=nullable,
                        postgresql_using=cast,
                    )
                else:
                    batch.alter_column(column, type_=new, existing_type=old, existing_nullable=nullable)
        if not postgresql and table == "packets":
            op.create_index(
                _ONE_DRAFT,
                "packets",
                ["iss", "patient_ref"],
                unique=True,
                sqlite_where=sa.text("status = 'draft'"),
            )


def upgrade() -> None:
    _alter(to_text=True)
    bind = op.get_bind()
    seal_clear_values(bind, dialect_cipher(bind.dialect), _sealed())


def downgrade() -> None:
    bind = op.get_bind()
    open_values(bind, dialect_cipher(bind.dialect), _sealed())
    # SQLite's table rebuild copies a column that becomes DATE through CAST(... AS DATE), whose
    # numeric affinity turns '1961-04-23' into 1961: such columns are put back after the rebuild.
    dates = _read_dates(bind) if bind.dialect.name == "sqlite" else {}
    _alter(to_text=False)
    for (table, keys, column), rows in dates.items():
        stored = sa.table(table, *(sa.column(key) for key in keys), sa.column(column))
        for row in rows:
            match = [stored.c[key] == row[i] for i, key in enumerate(keys)]
            bind.execute(sa.update(stored).where(*match).values({column: row[-1]}))


def _read_dates(bind: sa.Connection) -> dict[tuple[str, tuple[str, ...], str], list[Sequence[Any]]]:
    dates: dict[tuple[str, tuple[str, ...], str], list[Sequence[Any]]] = {}
    for table, keys, column, before, _ in COLUMNS:
        if isinstance(before, sa.Date):
            stored = sa.table(table, *(sa.column(key) for key in keys), sa.column(column))
            query = sa.select(*(stored.c[key] for key in keys), stored.c[column])
            dates[(table, keys, column)] = list(bind.execute(query).all())
    return dates

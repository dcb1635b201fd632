"""outside reports: the center's report file kept with the recorded opinion

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outside_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("packet_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["packet_id"], ["packets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outside_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outside_reports_packet_id"), ["packet_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outside_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outside_reports_packet_id"))
    op.drop_table("outside_reports")

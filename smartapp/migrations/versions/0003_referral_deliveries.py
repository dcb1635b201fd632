"""referral deliveries: every attempt to send a final referral to a center's FHIR endpoint

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("packet_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=False),
        sa.Column("document", sa.String(length=200), nullable=False),
        sa.Column("who", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(["packet_id"], ["packets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_deliveries_packet_id"), ["packet_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_deliveries_packet_id"))
    op.drop_table("referral_deliveries")

"""delivery target: the attempts table also keeps attempts to file the packet in the EHR

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00

Rows written before this revision are all sends to a receiving center, so the new column's
server default ("center") is their value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a constant default needs no table rebuild on SQLite, so foreign keys are safe.
    op.add_column(
        "referral_deliveries",
        sa.Column("target", sa.String(length=16), server_default="center", nullable=False),
    )


def downgrade() -> None:
    # The EHR filing attempts have no place in the older schema.
    op.execute(sa.text("DELETE FROM referral_deliveries WHERE target <> 'center'"))
    with op.batch_alter_table("referral_deliveries") as batch:
        batch.drop_column("target")

"""COPIL minutes (compte rendu) and when they were recorded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:50:00

Assigned number 0009 with down_revision "0007"; the lead re-chains it at merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("copil_meeting") as batch:
        batch.add_column(sa.Column("minutes", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("minutes_recorded_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("copil_meeting") as batch:
        batch.drop_column("minutes_recorded_at")
        batch.drop_column("minutes")

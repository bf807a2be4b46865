"""funding dossiers filed, validated budget and over-granted amounts in snapshots

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:40:00

Assigned down_revision "0003"; chained after 0005 when main (0004, 0005) was merged in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.money

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funding") as batch:
        batch.add_column(sa.Column("dossier_filed_on", sa.Date(), nullable=True))
    with op.batch_alter_table("budget_snapshot") as batch:
        batch.add_column(sa.Column("validated_budget", models.money.Money(), nullable=True))
        batch.add_column(sa.Column("validated_on", sa.Date(), nullable=True))
    with op.batch_alter_table("budget_snapshot_line") as batch:
        # existing snapshots had no over-granted amount: 0 cents, as the model's default
        batch.add_column(
            sa.Column(
                "over_granted", models.money.Money(), nullable=False, server_default="0"
            )
        )
    with op.batch_alter_table("budget_snapshot_line") as batch:
        batch.alter_column("over_granted", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("budget_snapshot_line") as batch:
        batch.drop_column("over_granted")
    with op.batch_alter_table("budget_snapshot") as batch:
        batch.drop_column("validated_on")
        batch.drop_column("validated_budget")
    with op.batch_alter_table("funding") as batch:
        batch.drop_column("dossier_filed_on")

"""Trial checkpoints and attempts: where a trial can resume from, and each run of it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("hpo_trials") as batch:
        batch.add_column(sa.Column("checkpoint_epoch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("checkpoint_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hpo_trials") as batch:
        batch.drop_column("attempts")
        batch.drop_column("checkpoint_bytes")
        batch.drop_column("checkpoint_epoch")

"""Dashboard reads at any study size: per-block value summaries, best-first indexes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

VALUE_BLOCK = 64  # storage.value_blocks.VALUE_BLOCK when this revision was written


def upgrade() -> None:
    op.create_table(
        "hpo_value_blocks",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("lo", sa.Float(), nullable=False),
        sa.Column("hi", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["hpo_studies.id"],
            ondelete="CASCADE",
            name="fk_hpo_value_blocks_study_id_hpo_studies",
        ),
        sa.PrimaryKeyConstraint("study_id", "block", name="pk_hpo_value_blocks"),
    )
    op.execute(
        "INSERT INTO hpo_value_blocks (study_id, block, count, lo, hi) "
        f"SELECT study_id, number / {VALUE_BLOCK}, COUNT(*), MIN(value), MAX(value) "
        "FROM hpo_trials WHERE state = 'complete' AND value IS NOT NULL "
        f"GROUP BY study_id, number / {VALUE_BLOCK}"
    )
    with op.batch_alter_table("hpo_trials") as batch:
        batch.drop_index("ix_hpo_trials_study_id_state_value")
        batch.create_index(
            "ix_hpo_trials_study_state_value_number", ["study_id", "state", "value", "number"]
        )
        batch.create_index("ix_hpo_trials_study_value_number", ["study_id", "value", "number"])


def downgrade() -> None:
    with op.batch_alter_table("hpo_trials") as batch:
        batch.drop_index("ix_hpo_trials_study_value_number")
        batch.drop_index("ix_hpo_trials_study_state_value_number")
        batch.create_index("ix_hpo_trials_study_id_state_value", ["study_id", "state", "value"])
    op.drop_table("hpo_value_blocks")

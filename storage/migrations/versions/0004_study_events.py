"""A per-study change log that the events stream (SSE) replays and resumes from.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "hpo_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hpo_events"),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["hpo_studies.id"],
            name="fk_hpo_events_study_id_hpo_studies",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_hpo_events_study_id_id", "hpo_events", ["study_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_hpo_events_study_id_id", table_name="hpo_events")
    op.drop_table("hpo_events")

"""Create the service's tables: studies, trials and per-epoch learning curves.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    _create_studies()
    _create_trials()
    _create_epochs()


def downgrade() -> None:
    op.drop_table("hpo_epochs")
    op.drop_table("hpo_trials")
    op.drop_table("hpo_studies")


def _create_studies() -> None:
    op.create_table(
        "hpo_studies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("optuna_study_name", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hpo_studies"),
        sa.UniqueConstraint("optuna_study_name", name="uq_hpo_studies_optuna_study_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hpo_studies_state", "hpo_studies", ["state"])


def _create_trials() -> None:
    op.create_table(
        "hpo_trials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("epochs_run", sa.Integer(), nullable=False),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hpo_trials"),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["hpo_studies.id"],
            name="fk_hpo_trials_study_id_hpo_studies",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_id_number"),
    )
    op.create_index(
        "ix_hpo_trials_study_id_state_value", "hpo_trials", ["study_id", "state", "value"]
    )


def _create_epochs() -> None:
    op.create_table(
        "hpo_epochs",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "number", "epoch", name="pk_hpo_epochs"),
        sa.ForeignKeyConstraint(
            ["study_id", "number"],
            ["hpo_trials.study_id", "hpo_trials.number"],
            name="fk_hpo_epochs_study_id_number_hpo_trials",
            ondelete="CASCADE",
        ),
    )

"""Each study belongs to a tenant; existing studies belong to 'default'.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "hpo_studies", sa.Column("tenant", sa.String(100), nullable=False, server_default="default")
    )
    op.create_index("ix_hpo_studies_tenant", "hpo_studies", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_hpo_studies_tenant", table_name="hpo_studies")
    with op.batch_alter_table("hpo_studies") as batch:
        batch.drop_column("tenant")

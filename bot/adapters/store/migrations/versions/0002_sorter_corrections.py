"""Staff corrections of the sorter (`cases set-kinds`), kept as labelled examples (issue 11).

Revision ID: 0002_sorter_corrections
Revises: 0001_release_6baab05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sorter_corrections"
down_revision = "0001_release_6baab05"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sorter_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kinds_before", sa.String(), nullable=False),
        sa.Column("kinds_after", sa.String(), nullable=False),
        sa.Column("guesses", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sorter_corrections_at", "sorter_corrections", ["at"], unique=False)
    op.create_index("ix_sorter_corrections_case_id", "sorter_corrections", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_table("sorter_corrections")  # its indexes go with it

"""The staff console (issue 13): console accounts; a case's identity check, outcome, customer-waiting
and documents-asked-again times; the template version of each queued mail; indexes for the queue.

Revision ID: 0003_staff_console
Revises: 0002_sorter_corrections
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_staff_console"
down_revision = "0002_sorter_corrections"
branch_labels = None
depends_on = None

EMPTY = sa.text("''")  # existing rows: no identity check, no outcome, no template recorded


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_accounts_name", "accounts", ["name"], unique=True)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity", sa.String(length=16), nullable=False, server_default=EMPTY))
        batch_op.add_column(sa.Column("identity_document", sa.String(length=80), nullable=False, server_default=EMPTY))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=False, server_default=EMPTY))
        batch_op.add_column(sa.Column("outcome_reason", sa.String(), nullable=False, server_default=EMPTY))
        batch_op.add_column(sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("customer_waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("documents_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_cases_customer_waiting_since", ["customer_waiting_since"], unique=False)
        batch_op.create_index("ix_cases_status_documents", ["status", "documents_received_at"], unique=False)
        batch_op.create_index("ix_cases_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index("ix_cases_status_opened_at", ["status", "opened_at"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=120), nullable=False, server_default=EMPTY))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("template")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for index in ("ix_cases_status_opened_at", "ix_cases_status_due_at", "ix_cases_status_documents",
                      "ix_cases_customer_waiting_since"):
            batch_op.drop_index(index)
        for column in ("documents_requested_at", "customer_waiting_since", "outcome_at", "outcome_reason", "outcome",
                       "identity_document", "identity"):
            batch_op.drop_column(column)
    op.drop_table("accounts")  # its index goes with it

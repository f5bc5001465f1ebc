"""Trust (issue 10): the outbox's normalised recipient and its domain, which the limits on automatic
mail count by, and one mail per case, purpose and recipient (the bot's Message-IDs are random now);
whether a case's sender was authenticated (its name and subject may then be echoed).

Revision ID: 0004_trust
Revises: 0003_staff_console
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_trust"
down_revision = "0003_staff_console"
branch_labels = None
depends_on = None

EMPTY = sa.text("''")


def _normalise(addr: str) -> str:
    """The same rule as the bot's (case folded, "+tag" removed), written out: a revision never imports the bot."""
    local, at, domain = addr.strip().strip("<>").casefold().rpartition("@")
    if not at or not local:
        return ""
    return f"{local.split('+', 1)[0] or local}@{domain.rstrip('.')}"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_verified", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_norm", sa.String(length=320), nullable=False, server_default=EMPTY))
        batch_op.add_column(sa.Column("to_domain", sa.String(length=255), nullable=False, server_default=EMPTY))

    outbox = sa.table("outbox", sa.column("id", sa.Integer()), sa.column("to_addr", sa.String()),
                      sa.column("to_norm", sa.String()), sa.column("to_domain", sa.String()))
    bind = op.get_bind()
    rows = bind.execute(sa.select(outbox.c.id, outbox.c.to_addr)).all()
    for key, to_addr in rows:
        norm = _normalise(to_addr or "") or (to_addr or "").lower()
        bind.execute(sa.update(outbox).where(outbox.c.id == key).values(
            to_norm=norm[:320], to_domain=norm.rpartition("@")[2][:255]))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_to_domain_created", ["to_domain", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_to_norm_created", ["to_norm", "created_at"], unique=False)
        batch_op.create_index("ux_outbox_case_purpose_to", ["case_id", "purpose", "to_norm"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ux_outbox_case_purpose_to")
        batch_op.drop_index("ix_outbox_to_norm_created")
        batch_op.drop_index("ix_outbox_to_domain_created")
        batch_op.drop_column("to_domain")
        batch_op.drop_column("to_norm")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("sender_verified")

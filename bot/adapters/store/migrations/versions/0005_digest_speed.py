"""The digest at 100,000 cases and a backlog's limits (issue 14): when each case's acknowledgement was
sent, kept on the case (the digest's "not acknowledged" section no longer looks for a sent
acknowledgement in the outbox for every open case); an index that counts open cases by kinds from the
index alone; the outbox's indexes for the limits on automatic mail carry `automatic`, so the counts
read no rows (they read every row of the period before, which made a drain quadratic).

Revision ID: 0005_digest_speed
Revises: 0004_trust
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_digest_speed"
down_revision = "0004_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))

    # a case is acknowledged when its "ack" mail was sent: the earliest such send (cases without one stay NULL)
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("acknowledged_at", sa.DateTime(timezone=True)))
    outbox = sa.table("outbox", sa.column("case_id", sa.Integer()), sa.column("purpose", sa.String()),
                      sa.column("status", sa.String()), sa.column("sent_at", sa.DateTime(timezone=True)),
                      sa.column("created_at", sa.DateTime(timezone=True)))
    first_sent = (sa.select(sa.func.min(sa.func.coalesce(outbox.c.sent_at, outbox.c.created_at)))
                  .where(outbox.c.case_id == cases.c.id, outbox.c.purpose == "ack", outbox.c.status == "sent")
                  .scalar_subquery())
    op.get_bind().execute(sa.update(cases).values(acknowledged_at=first_sent))

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_unacknowledged", ["acknowledged_at", "status", "opened_at"], unique=False)
        batch_op.create_index("ix_cases_status_kinds", ["status", "kinds"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_to_norm_created")
        batch_op.drop_index("ix_outbox_to_domain_created")
        batch_op.create_index("ix_outbox_to_norm_auto_created", ["to_norm", "automatic", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_to_domain_auto_created", ["to_domain", "automatic", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_auto_created", ["automatic", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_auto_created")
        batch_op.drop_index("ix_outbox_to_domain_auto_created")
        batch_op.drop_index("ix_outbox_to_norm_auto_created")
        batch_op.create_index("ix_outbox_to_domain_created", ["to_domain", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_to_norm_created", ["to_norm", "created_at"], unique=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_status_kinds")
        batch_op.drop_index("ix_cases_unacknowledged")
        batch_op.drop_column("acknowledged_at")

"""audit trail: keyset indexes for the actor filters; drop indexes that a composite covers

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch mode: a table copy on SQLite would lose the triggers).
    op.create_index("ix_audit_actor_id_seq", "audit_event", ["actor_id", "seq"])
    op.create_index("ix_audit_actor_label_seq", "audit_event", ["actor_label", "seq"])
    # (action), (org_id) and (actor_id) are prefixes of (x, seq) indexes: fewer writes.
    op.drop_index("ix_audit_event_action", table_name="audit_event")
    op.drop_index("ix_audit_event_org_id", table_name="audit_event")
    op.drop_index("ix_audit_event_actor_id", table_name="audit_event")


def downgrade() -> None:
    op.create_index("ix_audit_event_actor_id", "audit_event", ["actor_id"])
    op.create_index("ix_audit_event_org_id", "audit_event", ["org_id"])
    op.create_index("ix_audit_event_action", "audit_event", ["action"])
    op.drop_index("ix_audit_actor_label_seq", table_name="audit_event")
    op.drop_index("ix_audit_actor_id_seq", table_name="audit_event")

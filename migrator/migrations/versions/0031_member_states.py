"""engine: every membership moves on its own clock; attention items of their own

Revision ID: 0031
Revises: 0030

- ``group_member.add_status`` becomes ``state`` (migrator.groups.states): ``pending`` is
  ``not_linked`` or ``linked`` (whether the employee has Max), ``pending`` after an add call
  is ``adding``, ``already`` is ``joined``, ``failed`` is ``retrying`` or, after three
  attempts, ``unaddable``. ``add_error`` becomes ``reason``, ``add_attempts`` ``attempts``;
  new: ``state_at``, ``next_attempt_at`` and ``by_tool``.
- ``attention_item``: what needs a person, raised and resolved by the events that cause and
  fix it.
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

STATES = ("'not_linked','linked','adding','added','retrying','unaddable',"
          "'invited_by_link','joined','left'")


def upgrade() -> None:
    op.drop_index("ix_group_member_status_group", table_name="group_member")
    with op.batch_alter_table("group_member") as batch:
        batch.drop_index("ix_group_member_group_status")
        batch.alter_column("add_status", new_column_name="state",
                           existing_type=sa.String(16), existing_nullable=False)
        batch.alter_column("add_error", new_column_name="reason",
                           existing_type=sa.String(500), existing_nullable=True)
        batch.alter_column("add_attempts", new_column_name="attempts",
                           existing_type=sa.Integer(), existing_nullable=False)
        batch.add_column(sa.Column("state_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("by_tool", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    linked = "employee_id IN (SELECT id FROM employee WHERE max_user_id IS NOT NULL)"
    op.execute("UPDATE group_member SET state = 'added', by_tool = true WHERE state = 'added'")
    op.execute("UPDATE group_member SET state = 'joined' WHERE state = 'already'")
    op.execute("UPDATE group_member SET state = CASE WHEN attempts >= 3 THEN 'unaddable' "
               "ELSE 'retrying' END WHERE state = 'failed'")
    op.execute(f"UPDATE group_member SET state = 'adding' WHERE state = 'pending' "
               f"AND attempts > 0 AND {linked}")
    op.execute(f"UPDATE group_member SET state = 'linked' WHERE state = 'pending' AND {linked}")
    op.execute("UPDATE group_member SET state = 'not_linked' WHERE state = 'pending'")
    with op.batch_alter_table("group_member") as batch:
        batch.alter_column("state", existing_type=sa.String(16), existing_nullable=False,
                           server_default=None)
        batch.create_check_constraint("ck_group_member_state", f"state in ({STATES})")
        batch.create_index("ix_group_member_group_state", ["group_id", "state"])
    op.create_index("ix_group_member_state_group", "group_member", ["state", "group_id"])
    op.create_index("ix_group_member_due", "group_member", ["state", "next_attempt_at"])

    op.create_table(
        "attention_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=True),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("source_group.id"), nullable=True),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raised_by", sa.String(200), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("open_key", sa.String(120), nullable=True, unique=True),
        sa.CheckConstraint("subject_type in ('system','chat','group','member','org')",
                           name="ck_attention_subject"),
    )
    op.create_index("ix_attention_open", "attention_item", ["resolved_at", "code"])
    op.create_index("ix_attention_group", "attention_item", ["group_id", "resolved_at"])
    op.create_index("ix_attention_org", "attention_item", ["org_id"])


def downgrade() -> None:
    op.drop_table("attention_item")
    op.drop_index("ix_group_member_due", table_name="group_member")
    op.drop_index("ix_group_member_state_group", table_name="group_member")
    with op.batch_alter_table("group_member") as batch:
        batch.drop_index("ix_group_member_group_state")
        batch.drop_constraint("ck_group_member_state", type_="check")
    op.execute("UPDATE group_member SET state = 'already' WHERE state = 'joined'")
    op.execute("UPDATE group_member SET state = 'failed' "
               "WHERE state IN ('retrying','unaddable','invited_by_link')")
    op.execute("UPDATE group_member SET state = 'pending' "
               "WHERE state IN ('not_linked','linked','adding','left')")
    with op.batch_alter_table("group_member") as batch:
        batch.drop_column("by_tool")
        batch.drop_column("next_attempt_at")
        batch.drop_column("state_at")
        batch.alter_column("attempts", new_column_name="add_attempts",
                           existing_type=sa.Integer(), existing_nullable=False)
        batch.alter_column("reason", new_column_name="add_error",
                           existing_type=sa.String(500), existing_nullable=True)
        batch.alter_column("state", new_column_name="add_status",
                           existing_type=sa.String(16), existing_nullable=False)
        batch.create_index("ix_group_member_group_status", ["group_id", "add_status"])
    op.create_index("ix_group_member_status_group", "group_member", ["add_status", "group_id"])

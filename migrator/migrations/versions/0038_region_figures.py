"""progress: the region's figures without counting memberships or reading steps one by one

Revision ID: 0038
Revises: 0037

- ``source_group.members_in_chat`` counts the group's memberships whose state is in the chat
  (``added`` or ``joined``, ``migrator.groups.states.IN_CHAT``). Row triggers on
  ``group_member`` keep it exact on every write path (the engine, webhooks, imports with COPY
  or ``executemany``, rollbacks, the demo seeder), so the region-wide figures add up 10,000
  group counters instead of joining 300,000 memberships to their groups. A trigger fires only
  when a row enters or leaves the chat states (its ``WHEN`` clause), so imports of memberships
  that are not in a chat pay nothing. On SQLite a table rebuilt by Alembic's batch mode loses
  its triggers: a later migration must not rebuild ``group_member`` without creating them
  again (``tests/progress/test_members_in_chat.py`` checks the counter on the migrated schema).
- ``ix_step_kind_status_group (kind, status, group_id)`` replaces ``ix_step_kind_status``: the
  groups whose cut-over succeeded, per organisation or per wave, come from the index alone.
"""
import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

IN_CHAT = "('added', 'joined')"

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION group_member_in_chat_count() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state IN {IN_CHAT} THEN
    UPDATE source_group SET members_in_chat = members_in_chat - 1 WHERE id = OLD.group_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state IN {IN_CHAT} THEN
    UPDATE source_group SET members_in_chat = members_in_chat + 1 WHERE id = NEW.group_id;
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

# (name, event, WHEN condition, body) for both dialects; the body runs once per row.
MOVED = (f"(OLD.state IN {IN_CHAT}) <> (NEW.state IN {IN_CHAT}) "
         f"OR (NEW.state IN {IN_CHAT} AND OLD.group_id <> NEW.group_id)")
TRIGGERS = (
    ("group_member_in_chat_ins", "INSERT", f"NEW.state IN {IN_CHAT}"),
    ("group_member_in_chat_del", "DELETE", f"OLD.state IN {IN_CHAT}"),
    ("group_member_in_chat_upd", "UPDATE OF state, group_id", MOVED),
)
SQLITE_BODY = {
    "INSERT": "UPDATE source_group SET members_in_chat = members_in_chat + 1 "
              "WHERE id = NEW.group_id;",
    "DELETE": "UPDATE source_group SET members_in_chat = members_in_chat - 1 "
              "WHERE id = OLD.group_id;",
    "UPDATE OF state, group_id": (
        f"UPDATE source_group SET members_in_chat = members_in_chat - 1 "
        f"WHERE id = OLD.group_id AND OLD.state IN {IN_CHAT}; "
        f"UPDATE source_group SET members_in_chat = members_in_chat + 1 "
        f"WHERE id = NEW.group_id AND NEW.state IN {IN_CHAT};"),
}


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode: a table copy on SQLite would lose triggers).
    op.add_column("source_group", sa.Column("members_in_chat", sa.Integer(), nullable=False,
                                            server_default="0"))
    op.execute(f"UPDATE source_group SET members_in_chat = (SELECT count(*) FROM group_member "
               f"WHERE group_member.group_id = source_group.id "
               f"AND group_member.state IN {IN_CHAT})")
    op.drop_index("ix_step_kind_status", table_name="step")
    op.create_index("ix_step_kind_status_group", "step", ["kind", "status", "group_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for name, event, when in TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON group_member FOR EACH ROW "
                       f"WHEN ({when}) EXECUTE FUNCTION group_member_in_chat_count()")
    else:
        for name, event, when in TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON group_member FOR EACH ROW "
                       f"WHEN {when} BEGIN {SQLITE_BODY[event]} END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, _event, _when in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON group_member" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS group_member_in_chat_count()")
    op.drop_column("source_group", "members_in_chat")
    op.drop_index("ix_step_kind_status_group", table_name="step")
    op.create_index("ix_step_kind_status", "step", ["kind", "status"])

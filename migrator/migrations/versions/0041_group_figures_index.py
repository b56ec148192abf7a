"""groups: the per-organisation figures of the groups read from one index (SQLite)

Revision ID: 0041
Revises: 0040

SQLite only: ``ix_source_group_org_figures (org_id, wave_id, max_chat_id, needs_attention,
member_count, members_in_chat)`` holds every column the figures' per-organisation query of
the groups reads (``progress.service.own_counts``: counts and sums grouped by organisation
and wave), in the order it groups them. SQLite then reads the region's 10,000 groups from
the index alone, already grouped, instead of looking each row up from ``org_id``'s index and
sorting them in a temporary tree (6.6 ms down to about 3 ms at region scale, on every
dashboard, report and XLSX of the region). PostgreSQL reads the table in one pass and
aggregates by hash (under 3 ms); an index there would only stop the frequent updates of the
counters from being heap-only.
"""
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None

INDEX = "ix_source_group_org_figures"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # A plain CREATE INDEX (no batch mode: a table copy on SQLite would lose triggers).
    op.create_index(INDEX, "source_group", ["org_id", "wave_id", "max_chat_id",
                                            "needs_attention", "member_count",
                                            "members_in_chat"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index(INDEX, table_name="source_group")

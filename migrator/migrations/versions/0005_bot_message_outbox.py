"""bot message outbox (replies to people in their Max dialog)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import migrator.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idem_key", sa.String(length=200), nullable=False),
        sa.Column("max_user_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", migrator.db.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", migrator.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", migrator.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idem_key"),
    )
    op.create_index("ix_bot_message_max_user_id", "bot_message", ["max_user_id"])
    op.create_index("ix_bot_message_status_next", "bot_message", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_bot_message_status_next", table_name="bot_message")
    op.drop_index("ix_bot_message_max_user_id", table_name="bot_message")
    op.drop_table("bot_message")

"""max: the bot's dialogs - who stopped the bot, when the help answer was last sent

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "max_dialog_user",
        sa.Column("max_user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("started_ts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("stopped_ts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("help_sent_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("max_dialog_user")

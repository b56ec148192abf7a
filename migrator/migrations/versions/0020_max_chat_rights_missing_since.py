"""max: when the bot's rights in a chat were first found incomplete (re-check back-off)

Revision ID: 0020
Revises: 0080

Max sends no update when an owner promotes or demotes the bot, so the app re-checks the
rights of a chat that lacks some: within a minute of a step being postponed for them, then
backing off to every 10 minutes for 24 hours (counted from this column), then daily.
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0020"
down_revision = "0080"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("max_chat", sa.Column("rights_missing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("max_chat", "rights_missing_since")

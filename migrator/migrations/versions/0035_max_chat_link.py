"""max: the chat's join link, sent to people Max will not add to it

Revision ID: 0035
Revises: 0032

Stored from ``Chat.link`` of ``GET /chats/{chatId}`` whenever the chat is checked; the
fallback for a member Max refuses for good sends it to them by bot message and e-mail.
"""
import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("max_chat", sa.Column("link", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("max_chat", "link")

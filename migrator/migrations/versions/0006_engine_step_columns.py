"""engine: announce intent/message/pin, cutover override and escalation columns on step

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = [
    ("send_intent_at", UTCDateTime()),
    ("message_id", sa.String(200)),
    ("pinned_at", UTCDateTime()),
    ("override_at", UTCDateTime()),
    ("override_reason", sa.String(2000)),
    ("escalated_at", UTCDateTime()),
]


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): no table copy on SQLite.
    for name, type_ in COLUMNS:
        op.add_column("step", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _type in reversed(COLUMNS):
        op.drop_column("step", name)

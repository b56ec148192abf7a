"""max: the shared rate limiter's table; an index for order-tolerant update handling

Revision ID: 0004
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # migrator.max.ratelimit.MaxRateHit: the sliding log of DatabaseLimiter
    op.create_table(
        "max_rate_hit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_max_rate_hit_bucket_at", "max_rate_hit", ["bucket", "at"])
    # "is there a newer update of this type for this chat?" (stale title changes)
    op.create_index(
        "ix_max_update_chat_type_ts", "max_update", ["chat_id", "update_type", "timestamp"]
    )


def downgrade() -> None:
    op.drop_index("ix_max_update_chat_type_ts", table_name="max_update")
    op.drop_index("ix_max_rate_hit_bucket_at", table_name="max_rate_hit")
    op.drop_table("max_rate_hit")

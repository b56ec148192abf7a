"""auth: session versions, token expiry, TOTP secrets, aggregated sign-in failure events

Revision ID: 0030
Revises: 0021

- ``app_user.session_version``: part of every session's user id; raised by sign-out,
  a password change and deactivation, so every copied cookie stops working.
- ``app_user.totp_secret``: an admin's TOTP secret (``MIGRATOR_ADMIN_2FA``), empty if none.
- ``api_token.expires_at``: tokens expire (``API_TOKEN_DAYS``); existing ones get none.
- ``auth_event_window``: one audit event per e-mail/address and window for failed or
  throttled sign-ins, with the number of attempts it stands for.
"""
import sqlalchemy as sa
from alembic import op

import migrator.db

revision = "0030"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
    with op.batch_alter_table("api_token") as batch_op:
        batch_op.add_column(sa.Column("expires_at", migrator.db.UTCDateTime(), nullable=True))
    op.create_table(
        "auth_event_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("started_at", migrator.db.UTCDateTime(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action", "email", "client_ip", name="uq_auth_event_window_key"),
    )
    op.create_index("ix_auth_event_window_started_at", "auth_event_window", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_event_window_started_at", table_name="auth_event_window")
    op.drop_table("auth_event_window")
    with op.batch_alter_table("api_token") as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("app_user") as batch_op:
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("session_version")

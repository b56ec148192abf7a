"""directives: directives and milestones, transition acts, public channels, escalations,
ministry report runs

Revision ID: 0080
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0080"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directive",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("issued_by", sa.String(300), nullable=False),
        sa.Column("issued_at", sa.Date, nullable=False),
        sa.Column("scope_org_id", sa.Integer, sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_directive_scope_org_id", "directive", ["scope_org_id"])
    op.create_table(
        "directive_milestone",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("directive_id", sa.Integer, sa.ForeignKey("directive.id"), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("target_percent", sa.Float, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.CheckConstraint("metric in ('heads','employees','members','groups')",
                           name="ck_milestone_metric"),
        sa.CheckConstraint("target_percent > 0 and target_percent <= 100",
                           name="ck_milestone_target"),
    )
    op.create_index("ix_directive_milestone_directive_id", "directive_milestone",
                    ["directive_id"])
    op.create_table(
        "transition_act",
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organisation.id"), primary_key=True),
        sa.Column("act_number", sa.String(100), nullable=True),
        sa.Column("act_date", sa.Date, nullable=True),
        sa.Column("scan_path", sa.String(300), nullable=True),
        sa.Column("scan_type", sa.String(16), nullable=True),
        sa.Column("scan_sha256", sa.String(64), nullable=True),
        sa.Column("exemption", sa.String(16), nullable=True),
        sa.Column("exemption_reason", sa.String(500), nullable=True),
        sa.Column("updated_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "(exemption is null and act_number is not null and act_date is not null) or "
            "(exemption in ('arm_gs','departmental','other') and act_number is null)",
            name="ck_transition_act_kind"),
    )
    op.create_table(
        "public_channel",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("url", sa.String(500), nullable=False, unique=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("max_url", sa.String(500), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stopped_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("status in ('active','duplicated','moved','closed')",
                           name="ck_channel_status"),
    )
    op.create_index("ix_public_channel_org_id", "public_channel", ["org_id"])
    op.create_index("ix_public_channel_max", "public_channel", ["org_id", "max_url"])
    op.create_table(
        "directive_escalation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("milestone_id", sa.Integer, sa.ForeignKey("directive_milestone.id"),
                  nullable=False),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("plan_percent", sa.Float, nullable=False),
        sa.Column("fact_percent", sa.Float, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("emailed_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_directive_escalation_milestone_id", "directive_escalation",
                    ["milestone_id"])
    op.create_index("ix_directive_escalation_org_id", "directive_escalation", ["org_id"])
    op.create_index("ix_directive_escalation_resolved_at", "directive_escalation",
                    ["resolved_at"])
    op.create_table(
        "report_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_path", sa.String(300), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("produced_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("produced_at", UTCDateTime, nullable=False),
        sa.Column("signed_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("signed_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_report_run_org_id", "report_run", ["org_id"])


def downgrade() -> None:
    op.drop_table("report_run")
    op.drop_table("directive_escalation")
    op.drop_table("public_channel")
    op.drop_table("transition_act")
    op.drop_table("directive_milestone")
    op.drop_table("directive")

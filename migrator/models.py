"""Imports every feature's tables so that ``SQLModel.metadata`` knows the whole schema."""

from migrator.attention.models import AttentionItem
from migrator.audit.models import AuditEvent, AuditHead
from migrator.auth.models import ApiToken, LoginAttempt, User, UserOrgScope
from migrator.directives.models import (
    Directive,
    Escalation,
    Milestone,
    PublicChannel,
    ReportRun,
    TransitionAct,
)
from migrator.engine.models import GroupRollback, Heartbeat, RollbackMember, Step
from migrator.groups.models import GroupMember, SourceGroup
from migrator.mail.models import OutboxMessage
from migrator.max.models import MaxChat, MaxChatMember, MaxDialogUser, MaxUpdate
from migrator.max.ratelimit import MaxRateHit
from migrator.org.models import Organisation
from migrator.people.invite_models import BotMessage
from migrator.people.models import Employee, InviteToken
from migrator.progress.models import ProgressSnapshot
from migrator.waves.models import Setting, Wave

__all__ = [
    "ApiToken", "AuditEvent", "AuditHead", "BotMessage", "Employee", "GroupMember", "Heartbeat",
    "InviteToken", "LoginAttempt", "MaxChat", "MaxChatMember", "MaxDialogUser", "MaxUpdate",
    "Organisation",
    "OutboxMessage", "ProgressSnapshot", "Setting", "SourceGroup", "Step", "User",
    "UserOrgScope", "Wave",
]
__all__ += ["MaxRateHit", "AttentionItem", "GroupRollback", "RollbackMember"]
__all__ += ["Directive", "Escalation", "Milestone", "PublicChannel", "ReportRun",
            "TransitionAct"]

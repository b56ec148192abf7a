"""Audit events in the reader's language: actions as phrases, actors as names, objects and
details with labels. The stored event (hashed, append-only) keeps its codes; only the pages
translate them. A code without a phrase is shown as code, never as if it were prose.
"""

from __future__ import annotations

import json
import re

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup, escape

from migrator.auth.models import User
from migrator.db import get_session
from migrator.groups.attention import STEP_KIND_LABELS, attention_text

ACTIONS = {
    "attention.raised": lazy_pgettext("audit", "Needs attention"),
    "attention.resolved": lazy_pgettext("audit", "Attention item resolved"),
    "audit.export": lazy_pgettext("audit", "Audit log exported"),
    "auth.login": lazy_pgettext("audit", "Signed in"),
    "auth.login_failed": lazy_pgettext("audit", "Failed sign-in attempt"),
    "auth.login_throttled": lazy_pgettext("audit", "Sign-in attempts throttled"),
    "auth.logout": lazy_pgettext("audit", "Signed out"),
    "bot_message.failed": lazy_pgettext("audit", "The bot's message was not delivered"),
    "chat.announce": lazy_pgettext("audit", "Announcement posted in the Max chat"),
    "chat.announce_recovered": lazy_pgettext("audit", "Announcement found again in the Max chat"),
    "chat.pin": lazy_pgettext("audit", "Message pinned"),
    "chat.unpin": lazy_pgettext("audit", "Message unpinned"),
    "demo.seed": lazy_pgettext("audit", "Demo data created"),
    "directive.created": lazy_pgettext("audit", "Directive recorded"),
    "directive.head_emailed": lazy_pgettext("audit", "The head was e-mailed about a directive"),
    "directive.lagging": lazy_pgettext("audit", "Directive lagging behind"),
    "employee.invite": lazy_pgettext("audit", "Invitation sent"),
    "employee.link_conflict": lazy_pgettext("audit", "Max account conflict"),
    "employee.linked": lazy_pgettext("audit", "Max account linked"),
    "group.link": lazy_pgettext("audit", "Group linked to a Max chat"),
    "group.rollback_done": lazy_pgettext("audit", "Move undone"),
    "group.rollback_failed": lazy_pgettext("audit", "Undoing the move failed"),
    "group.rollback_requested": lazy_pgettext("audit", "Undoing the move requested"),
    "group.unlink": lazy_pgettext("audit", "Group unlinked from its Max chat"),
    "identity.conflict": lazy_pgettext("audit", "Max account conflict"),
    "identity.kept": lazy_pgettext("audit", "Max account link kept"),
    "identity.rebind": lazy_pgettext("audit", "Max account replaced"),
    "identity.unlink_done": lazy_pgettext("audit", "Max account removed from chats"),
    "identity.unlink_failed": lazy_pgettext("audit", "Removing the Max account from chats failed"),
    "identity.unlinked": lazy_pgettext("audit", "Max account unlinked"),
    "import.channels": lazy_pgettext("audit", "Public channels imported"),
    "import.employees": lazy_pgettext("audit", "Employees imported"),
    "import.groups": lazy_pgettext("audit", "Source groups imported"),
    "import.members": lazy_pgettext("audit", "Group members imported"),
    "import.organisations": lazy_pgettext("audit", "Organisations imported"),
    "import.transition_acts": lazy_pgettext("audit", "Transition acts imported"),
    "mail.failed": lazy_pgettext("audit", "E-mail not sent"),
    "mail.sent": lazy_pgettext("audit", "E-mail sent"),
    "max.auth_failed": lazy_pgettext("audit", "Max refused the bot token"),
    "max.auth_restored": lazy_pgettext("audit", "Max accepts the bot token again"),
    "max.call": lazy_pgettext("audit", "Call to Max"),
    "max.chat_checked": lazy_pgettext("audit", "Max chat checked"),
    "max.chat_discovered": lazy_pgettext("audit", "Max chat found"),
    "max.chat_registered": lazy_pgettext("audit", "Max chat added by hand"),
    "max.chat_removed": lazy_pgettext("audit", "Bot removed from the Max chat"),
    "max.subscribe": lazy_pgettext("audit", "Subscribed to Max updates"),
    "max.subscription_lost": lazy_pgettext("audit", "Max stopped sending updates"),
    "max.unsubscribe": lazy_pgettext("audit", "Unsubscribed from Max updates"),
    "max.update": lazy_pgettext("audit", "Update from Max"),
    "max.update_rejected": lazy_pgettext("audit", "Update from Max rejected"),
    "member.added": lazy_pgettext("audit", "Member added to the Max chat"),
    "member.join_link_sent": lazy_pgettext("audit", "Join link sent"),
    "member.removed": lazy_pgettext("audit", "Member removed from the Max chat"),
    "members.add": lazy_pgettext("audit", "Members added to the Max chat"),
    "members.add_failed": lazy_pgettext("audit", "Members not added to the Max chat"),
    "members.retry": lazy_pgettext("audit", "Adding members again"),
    "ops.backup_created": lazy_pgettext("audit", "Backup created"),
    "ops.backup_restored": lazy_pgettext("audit", "Backup restored"),
    "org.create": lazy_pgettext("audit", "Organisation created"),
    "progress.export": lazy_pgettext("audit", "Report exported"),
    "report.ministry.produced": lazy_pgettext("audit", "Ministry report produced"),
    "report.ministry.signed": lazy_pgettext("audit", "Ministry report signed off"),
    "settings.update": lazy_pgettext("audit", "Settings changed"),
    "step.confirmed": lazy_pgettext("audit", "Step confirmed"),
    "step.escalated": lazy_pgettext("audit", "Overdue step escalated"),
    "step.failed": lazy_pgettext("audit", "Step failed"),
    "step.mark_failed": lazy_pgettext("audit", "Step marked as failed"),
    "step.override": lazy_pgettext("audit", "Cutover allowed below the threshold"),
    "step.pause": lazy_pgettext("audit", "Step paused"),
    "step.postponed": lazy_pgettext("audit", "Step postponed"),
    "step.ran": lazy_pgettext("audit", "Step run"),
    "step.reopened": lazy_pgettext("audit", "Step reopened"),
    "step.reset": lazy_pgettext("audit", "Step reset"),
    "step.resume": lazy_pgettext("audit", "Step resumed"),
    "step.retried": lazy_pgettext("audit", "Step will be tried again"),
    "step.retry": lazy_pgettext("audit", "Step retry requested"),
    "step.skipped": lazy_pgettext("audit", "Step skipped"),
    "step.started": lazy_pgettext("audit", "Step started"),
    "step.succeeded": lazy_pgettext("audit", "Step done"),
    "step.waiting": lazy_pgettext("audit", "Step waiting"),
    "token.create": lazy_pgettext("audit", "API token issued"),
    "token.revoke": lazy_pgettext("audit", "API token revoked"),
    "transition_act.saved": lazy_pgettext("audit", "Transition act saved"),
    "user.activate": lazy_pgettext("audit", "User activated"),
    "user.create": lazy_pgettext("audit", "User created"),
    "user.deactivate": lazy_pgettext("audit", "User deactivated"),
    "user.totp_off": lazy_pgettext("audit", "Second factor turned off"),
    "user.totp_on": lazy_pgettext("audit", "Second factor turned on"),
    "user.update": lazy_pgettext("audit", "User changed"),
    "wave.activate": lazy_pgettext("audit", "Wave started"),
    "wave.complete": lazy_pgettext("audit", "Wave completed"),
    "wave.create": lazy_pgettext("audit", "Wave planned"),
    "wave.pause": lazy_pgettext("audit", "Wave paused"),
    "wave.reschedule": lazy_pgettext("audit", "Wave rescheduled"),
    "wave.resume": lazy_pgettext("audit", "Wave resumed"),
}

# The runner's and the transport's own bookkeeping: hidden from a page's history unless asked.
TECHNICAL_ACTIONS = ("step.started", "step.ran", "step.waiting", "step.postponed",
                     "step.retried", "step.reopened", "max.call", "max.update",
                     "max.chat_checked", "mail.sent")

OBJECT_TYPES = {
    "audit": lazy_pgettext("audit", "audit log"),
    "bot_message": lazy_pgettext("audit", "bot message"),
    "chat": lazy_pgettext("audit", "Max chat"),
    "database": lazy_pgettext("audit", "database"),
    "directive": lazy_pgettext("audit", "directive"),
    "employee": lazy_pgettext("audit", "employee"),
    "group": lazy_pgettext("audit", "group"),
    "import": lazy_pgettext("audit", "import"),
    "max_bot": lazy_pgettext("audit", "Max bot"),
    "max_chat": lazy_pgettext("audit", "Max chat"),
    "max_update": lazy_pgettext("audit", "update from Max"),
    "organisation": lazy_pgettext("audit", "organisation"),
    "outbox": lazy_pgettext("audit", "e-mail"),
    "outbox_message": lazy_pgettext("audit", "e-mail"),
    "region": lazy_pgettext("audit", "region"),
    "report": lazy_pgettext("audit", "report"),
    "setting": lazy_pgettext("audit", "settings"),
    "step": lazy_pgettext("audit", "step"),
    "user": lazy_pgettext("audit", "user"),
    "wave": lazy_pgettext("audit", "wave"),
}

# Background work by its actor id; the runner's label names a machine and a process.
JOBS = {
    "runner": lazy_pgettext("audit", "Scheduler"),
    "reminders": lazy_pgettext("audit", "Reminders"),
    "digest": lazy_pgettext("audit", "Daily digest"),
    "escalations": lazy_pgettext("audit", "Escalations"),
    "mailer": lazy_pgettext("audit", "Mail sender"),
    "bot-sender": lazy_pgettext("audit", "Bot messages"),
    "directives": lazy_pgettext("audit", "Directive checks"),
    "max_subscription": lazy_pgettext("audit", "Max subscription check"),
    "max_rights_daily": lazy_pgettext("audit", "Daily bot rights check"),
    "demo": lazy_pgettext("audit", "Demo data"),
}
SYSTEMS = {
    "system": lazy_pgettext("audit", "System"),
    "cli": lazy_pgettext("audit", "Command line"),
}

SUMMARY_KEYS = {
    "kind": lazy_pgettext("audit", "step"),
    "group": lazy_pgettext("audit", "group"),
    "group_id": lazy_pgettext("audit", "group"),
    "before": lazy_pgettext("audit", "was"),
    "after": lazy_pgettext("audit", "now"),
    "reason": lazy_pgettext("audit", "reason"),
    "error": lazy_pgettext("audit", "error"),
    "email": lazy_pgettext("audit", "e-mail"),
    "attempts": lazy_pgettext("audit", "attempts"),
    "code": lazy_pgettext("audit", "code"),
    "title": lazy_pgettext("audit", "title"),
    "subject_id": lazy_pgettext("audit", "subject"),
    "rows": lazy_pgettext("audit", "rows"),
    "org": lazy_pgettext("audit", "organisation"),
    "name": lazy_pgettext("audit", "name"),
    "role": lazy_pgettext("audit", "role"),
    "orgs": lazy_pgettext("audit", "organisations"),
    "to": lazy_pgettext("audit", "to"),
    "members": lazy_pgettext("audit", "members"),
    "groups": lazy_pgettext("audit", "groups"),
    "steps": lazy_pgettext("audit", "steps"),
    "chat_id": lazy_pgettext("audit", "Max chat"),
    "max_chat_id": lazy_pgettext("audit", "Max chat"),
    "employee_id": lazy_pgettext("audit", "employee"),
    "source": lazy_pgettext("audit", "source"),
    "note": lazy_pgettext("audit", "note"),
    "file": lazy_pgettext("audit", "file"),
    "created": lazy_pgettext("audit", "created"),
    "updated": lazy_pgettext("audit", "updated"),
    "unchanged": lazy_pgettext("audit", "unchanged"),
    "format": lazy_pgettext("audit", "format"),
    "by": lazy_pgettext("audit", "by"),
    "url": lazy_pgettext("audit", "link"),
    "missing": lazy_pgettext("audit", "missing"),
    "removed": lazy_pgettext("audit", "removed"),
    "added": lazy_pgettext("audit", "added"),
    "failed": lazy_pgettext("audit", "failed"),
    "count": lazy_pgettext("audit", "count"),
    "employee_ids": lazy_pgettext("audit", "employees"),
    "directive_id": lazy_pgettext("audit", "directive"),
    "act_number": lazy_pgettext("audit", "act number"),
    "issued_by": lazy_pgettext("audit", "issued by"),
}

# A step's status in a "was"/"now" pair (msgids shared with the steps panel)
STEP_STATUSES = {
    "pending": _l("pending"), "due": _l("due"), "running": _l("running"),
    "waiting": _l("waiting for confirmation"), "succeeded": _l("done"), "failed": _l("failed"),
    "skipped": _l("skipped"), "paused": _l("paused"),
}
_STATUS_KEYS = ("before", "after")
_CODE_LIKE = re.compile(r"^[^\sА-Яа-яЁё]+$")  # one word, no Cyrillic: a code, a path


def action_text(action: str) -> str | None:
    """The action as a phrase, or ``None`` for an action without one."""
    label = ACTIONS.get(action)
    return str(label) if label is not None else None


def object_type_text(object_type: str | None) -> str:
    if not object_type:
        return ""
    label = OBJECT_TYPES.get(object_type)
    return str(label) if label is not None else object_type


def actor_text(actor_type: str | None, actor_id: str | None, label: str | None) -> str:
    """Who acted, as a person reads it: a user's name (else e-mail), a job's name."""
    if actor_type == "user":
        if actor_id and actor_id.isdigit():
            user = get_session().get(User, int(actor_id))
            if user is not None:
                return user.full_name or user.email
        return label or "—"
    if actor_type == "job":
        name = JOBS.get(actor_id or "")
        return str(name) if name is not None else str(lazy_pgettext("audit", "Background job"))
    if actor_type == "max":
        return "Max"
    name = SYSTEMS.get(actor_id or "")
    return str(name) if name is not None else str(lazy_pgettext("audit", "System"))


def changed_by_text(changed_by: str | None) -> str:
    """A step's ``changed_by`` (an e-mail or ``job:<name>[:<process>]``) as a name."""
    if not changed_by:
        return "—"
    if changed_by.startswith("job:"):
        return actor_text("job", changed_by.split(":")[1], None)
    return changed_by


def _value(value) -> Markup:
    if isinstance(value, bool):
        return escape(lazy_pgettext("audit", "yes") if value else lazy_pgettext("audit", "no"))
    if isinstance(value, str):
        if value in STEP_KIND_LABELS:
            return escape(STEP_KIND_LABELS[value])
        shown = attention_text(value)
        if shown != value:
            return escape(shown)
        if _CODE_LIKE.match(value) and "@" not in value:
            return Markup("<code>%s</code>") % value
        return Markup("«%s»") % value
    if isinstance(value, list):
        return Markup(", ").join(_value(v) for v in value[:20]) + (
            Markup(", …") if len(value) > 20 else Markup(""))
    if isinstance(value, (int, float)) or value is None:
        return escape("—" if value is None else value)
    return Markup("<code>%s</code>") % json.dumps(value, ensure_ascii=False)


def summary_html(raw: str, limit: int = 8) -> Markup:
    """An event's details as «label: value» pairs; an unknown key is shown as code."""
    try:
        data = json.loads(raw)
    except ValueError:
        return Markup("<code>%s</code>") % raw[:160]
    if not data:
        return Markup("")
    if not isinstance(data, dict):
        return _value(data)
    parts = []
    for key, value in list(data.items())[:limit]:
        if key in _STATUS_KEYS and isinstance(value, str) and value in STEP_STATUSES:
            value = str(STEP_STATUSES[value])
        label = SUMMARY_KEYS.get(key)
        head = escape(label) if label is not None else Markup("<code>%s</code>") % key
        parts.append(Markup("%s: %s") % (head, _value(value)))
    more = Markup("; …") if len(data) > limit else Markup("")
    return Markup("; ").join(parts) + more

"""E-mails the engine queues: escalations, completion reports, the daily digest.

All go through the mail outbox (``queue_email``) inside the caller's transaction, keyed so
that the same decision never makes two messages.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app
from sqlmodel import select

from migrator.auth.models import User, UserOrgScope
from migrator.db import get_session
from migrator.engine.models import Step
from migrator.groups.attention import STEP_KIND_LABELS, attention_text
from migrator.mail.service import queue_email
from migrator.mail.templates import render_email
from migrator.max.models import MaxChat
from migrator.org.models import Organisation
from migrator.waves.models import Wave

log = logging.getLogger("migrator.engine")


def coordinators_for(org: Organisation | None) -> list[tuple[str, str]]:
    """``(e-mail, full name)`` of the active coordinators whose scope covers ``org``."""
    if org is None:
        return []
    rows = get_session().exec(
        select(User.email, User.full_name).join(UserOrgScope, UserOrgScope.user_id == User.id)
        .join(Organisation, Organisation.id == UserOrgScope.org_id)
        .where(User.role == "coordinator", User.is_active.is_(True),
               sa.literal(org.path).like(Organisation.path + "%"))
    ).all()
    return sorted(set(rows))


def render(name: str, fallback_subject: str, fallback_text: str, **ctx):
    """``(subject, text, html)`` from the shared e-mail templates, or plain fallback."""
    try:
        return render_email(name, **ctx)
    except Exception:  # a template that cannot render must not stop the engine
        log.warning("e-mail template %r failed, using the plain text", name, exc_info=True)
        return fallback_subject, fallback_text, None


def queue(idem_key: str, to: str, subject: str, text: str, html, *, kind: str,
          org_id: int | None) -> None:
    queue_email(idem_key, to, subject, text, html, kind=kind, org_id=org_id)


def group_url(group) -> str:
    return f"{current_app.config['MIGRATOR_BASE_URL']}/groups/{group.key}"


def escalate_step(step, group, error: str, marker: str | None = None) -> int:
    """One escalation e-mail per failure to the coordinators and the organisation's head."""
    session = get_session()
    org = session.get(Organisation, group.org_id) if group else None
    wave = session.get(Wave, step.wave_id)
    to = coordinators_for(org)
    if org is not None and org.head_email:
        to.append((org.head_email, ""))
    group_name = group.name if group else "?"
    if marker is None:
        marker = step.finished_at.strftime("%Y%m%d%H%M%S") if step.finished_at else "0"
    sent = set()
    shown_error = attention_text(error)  # the runner's English record, in words for people
    label = str(STEP_KIND_LABELS.get(step.kind, step.kind))
    for addr, full_name in to:
        if addr in sent:
            continue
        sent.add(addr)
        subject, text, html = render(
            "escalation",
            f"Мигратор: шаг «{label}» группы «{group_name}» требует внимания",
            f"Шаг «{label}» группы «{group_name}» не выполнен.\nОшибка: {shown_error}\n\n"
            f"Откройте страницу группы в Миграторе, чтобы повторить или пропустить шаг.",
            full_name=full_name, group_name=group_name, step=step.kind,
            org_name=org.name if org else None, due_at=step.due_at,
            deadline=wave.deadline if wave else None, attempts=step.attempts,
            last_error=shown_error, url=group_url(group) if group else None,
        )
        queue(f"escalation:step:{step.id}:{marker}:{addr}", addr, subject, text, html,
              kind="escalation", org_id=org.id if org else None)
    return len(sent)


def queue_report(group, step, in_chat: int, total: int) -> bool:
    """The completion report to the head of the group's organisation (once per group)."""
    session = get_session()
    org = session.get(Organisation, group.org_id)
    if org is None or not org.head_email:
        return False
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    first = session.exec(select(Step).where(Step.group_id == group.id, Step.kind == "invite")
                         ).first()
    pct = round(100 * in_chat / total) if total else 0
    subject, text, html = render(
        "report",
        f"Migrator: группа «{group.name}» переведена в Max",
        f"Группа «{group.name}» переведена в чат Max.\n"
        f"В чате {in_chat} из {total} участников ({pct}%).\n\n"
        f"Официальная переписка по-прежнему ведётся по электронной почте и в СЭД.",
        full_name="", group_name=group.name, chat_title=chat.title if chat else "",
        members_total=total, members_in_chat=in_chat, org_name=org.name,
        platform=group.platform, started_at=first.started_at if first else None,
        cutover_at=step.due_at, closed_at=step.confirmed_at,
        override_reason=step.override_reason, url=group_url(group),
    )
    queue(f"report:group:{group.id}", org.head_email, subject, text, html, kind="report",
          org_id=org.id)
    return True

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
from migrator.org.models import Organisation

log = logging.getLogger("migrator.engine")


def coordinators_for(org: Organisation | None) -> list[str]:
    """E-mails of the active coordinators whose scope covers ``org``."""
    if org is None:
        return []
    rows = get_session().exec(
        select(User.email).join(UserOrgScope, UserOrgScope.user_id == User.id)
        .join(Organisation, Organisation.id == UserOrgScope.org_id)
        .where(User.role == "coordinator", User.is_active.is_(True),
               sa.literal(org.path).like(Organisation.path + "%"))
    ).all()
    return sorted(set(rows))


def render(name: str, fallback_subject: str, fallback_text: str, **ctx):
    """``(subject, text, html)`` from the shared e-mail templates, or plain fallback."""
    try:
        from migrator.mail.templates import render_email

        return render_email(name, **ctx)
    except Exception:  # template not there yet or expecting other context
        log.warning("e-mail template %r unavailable, using the plain text", name,
                    exc_info=current_app.debug)
        return fallback_subject, fallback_text, None


def queue(idem_key: str, to: str, subject: str, text: str, html, *, kind: str,
          org_id: int | None) -> None:
    from migrator.mail.service import queue_email

    queue_email(idem_key, to, subject, text, html, kind=kind, org_id=org_id)


def escalate_step(step, group, error: str) -> int:
    """One escalation e-mail per failure to the coordinators and the organisation's head."""
    session = get_session()
    org = session.get(Organisation, group.org_id) if group else None
    to = coordinators_for(org)
    if org is not None and org.head_email:
        to.append(org.head_email)
    group_name = group.name if group else "?"
    subject, text, html = render(
        "escalation",
        f"Migrator: шаг «{step.kind}» группы «{group_name}» требует внимания",
        f"Шаг «{step.kind}» группы «{group_name}» не выполнен после {step.attempts} попыток.\n"
        f"Ошибка: {error}\n\nОткройте страницу группы в Migrator, чтобы повторить или "
        f"пропустить шаг.",
        group=group, org=org, step=step, error=error, kind=step.kind,
    )
    marker = step.finished_at.strftime("%Y%m%d%H%M%S") if step.finished_at else "0"
    for addr in sorted(set(to)):
        queue(f"escalation:step:{step.id}:{marker}:{addr}", addr, subject, text, html,
              kind="escalation", org_id=org.id if org else None)
    return len(set(to))


def queue_report(group, step, in_chat: int, total: int) -> bool:
    """The completion report to the head of the group's organisation (once per group)."""
    session = get_session()
    org = session.get(Organisation, group.org_id)
    if org is None or not org.head_email:
        return False
    pct = round(100 * in_chat / total) if total else 0
    subject, text, html = render(
        "report",
        f"Migrator: группа «{group.name}» переведена в Max",
        f"Группа «{group.name}» ({group.platform}) переведена в чат Max.\n"
        f"В чате {in_chat} из {total} участников ({pct}%).\n"
        f"Старая группа закрыта; подтверждение: {step.note or '-'}.\n\n"
        f"Официальная переписка по-прежнему ведётся по электронной почте и в СЭД.",
        group=group, org=org, step=step, in_chat=in_chat, total=total, coverage=pct,
    )
    queue(f"report:group:{group.id}", org.head_email, subject, text, html, kind="report",
          org_id=org.id)
    return True

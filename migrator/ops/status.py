"""The figures of «Состояние системы»: the readiness checks and what lies behind them."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from migrator.db import get_session, utcnow
from migrator.mail.models import OutboxMessage
from migrator.max.ratelimit import MaxRateHit, bucket_key
from migrator.max.service import webhook_url
from migrator.ops import checks
from migrator.people.invite_models import BotMessage

OUTBOX_KINDS = {
    "invite": _l("Invitations"),
    "reminder": _l("Reminders"),
    "report": _l("Completion reports"),
    "digest": _l("Digests"),
    "escalation": _l("Escalations"),
    "bot_reply": _l("Bot replies in Max"),
    "join_link": _l("Chat join links (people Max will not add)"),
}


def outbox_kind_label(kind: str) -> str:
    return str(OUTBOX_KINDS.get(kind, kind))


def rate_use(now: float | None = None) -> dict:
    """Max requests let out by the shared limiter in the last second and minute."""
    cfg = current_app.config
    now = now or time.time()
    session = get_session()
    if not cfg["MAX_BOT_TOKEN"]:
        return {"last_second": 0, "last_minute": 0, "rps": cfg["MAX_RPS"], "percent": 0}
    bucket = bucket_key(cfg["MAX_BOT_TOKEN"])

    def since(seconds: float) -> int:
        return session.scalar(sa.select(sa.func.count()).select_from(MaxRateHit).where(
            MaxRateHit.bucket == bucket, MaxRateHit.at >= now - seconds)) or 0

    second, minute = since(1.0), since(60.0)
    return {"last_second": second, "last_minute": minute, "rps": cfg["MAX_RPS"],
            "percent": round(100 * second / cfg["MAX_RPS"])}


def backlog() -> list[dict]:
    """Unsent outbox messages by kind: how many, the oldest's creation time."""
    session = get_session()
    rows = [{"kind": kind, "count": n, "oldest": oldest} for kind, n, oldest in session.execute(
        sa.select(OutboxMessage.kind, sa.func.count(), sa.func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_(checks.UNSENT)).group_by(OutboxMessage.kind)
        .order_by(OutboxMessage.kind))]
    n, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(BotMessage.created_at))
        .where(BotMessage.status.in_(checks.UNSENT))).one()
    if n:
        rows.append({"kind": "bot_reply", "count": n, "oldest": oldest})
    for row in rows:  # SQLite returns aggregates of datetimes as text
        row["oldest"] = checks.as_utc(row["oldest"])
    return rows


def page_context() -> dict:
    report = checks.readiness()
    status = checks.max_status()
    return {
        "report": report,
        "heartbeat": checks.heartbeat(),
        "heartbeat_max_age": checks.HEARTBEAT_MAX_AGE,
        "webhook_url": webhook_url(),
        "subscriptions": status.subscriptions,
        "max_error": status.error or status.subscriptions_error,
        "rate": rate_use(),
        "backlog": backlog(),
        "now": utcnow(),
        "outbox_kind_label": outbox_kind_label,
    }

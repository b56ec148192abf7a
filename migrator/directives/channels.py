"""Public channels under 41-FZ: each organisation's Telegram/WhatsApp/... channels and their
Max counterparts; a channel without one is an attention item."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlmodel import select

from migrator.auth.service import scoped
from migrator.db import get_session, utcnow
from migrator.directives.models import CHANNEL_STATUSES, PublicChannel
from migrator.org.models import Organisation

STATUS_LABELS = {
    "active": lazy_pgettext("channel", "active"),  # a wave's or step's "active" differs
    "duplicated": _l("posts in both places"),
    "moved": _l("points to Max only"),
    "closed": _l("closed"),
}
STOPPED = ("moved", "closed")


def has_max():
    """SQL: the channel has a Max counterpart."""
    return sa.and_(PublicChannel.max_url.is_not(None), PublicChannel.max_url != "")


def apply_status(channel: PublicChannel, status: str) -> None:
    """Set the status; the first move to ``moved``/``closed`` records when it stopped."""
    if status not in CHANNEL_STATUSES:
        raise ValueError(status)
    if status in STOPPED and channel.stopped_at is None:
        channel.stopped_at = utcnow()
    elif status not in STOPPED:
        channel.stopped_at = None
    channel.status = status


def org_channels(org: Organisation) -> list[PublicChannel]:
    return list(get_session().exec(
        select(PublicChannel).where(PublicChannel.org_id == org.id)
        .order_by(PublicChannel.platform, PublicChannel.title)).all())


def without_max(user):
    """Channels in the user's scope with no Max counterpart (attention), with their org."""
    q = (sa.select(PublicChannel, Organisation)
         .join(Organisation, Organisation.id == PublicChannel.org_id)
         .where(sa.not_(has_max())))
    return scoped(q, PublicChannel.org_id, user)


@dataclass
class Summary:
    org: Organisation | None
    total: int = 0
    with_max: int = 0
    stopped: int = 0
    by_status: dict | None = None


def own_counts(org_ids) -> dict[int, tuple[int, int, int]]:
    """Each organisation's own ``(total, with a Max counterpart, stopped)``."""
    q = (sa.select(PublicChannel.org_id, sa.func.count(),
                   sa.func.sum(sa.case((has_max(), 1), else_=0)),
                   sa.func.sum(sa.case((PublicChannel.status.in_(STOPPED), 1), else_=0)))
         .group_by(PublicChannel.org_id))
    if org_ids is not None:
        q = q.where(PublicChannel.org_id.in_(org_ids))
    return {oid: (n, int(m or 0), int(s or 0)) for oid, n, m, s in get_session().execute(q)}


def region_summary(user) -> list[Summary]:
    """Per organisation with channels (in the user's scope): totals; first row all of them."""
    session = get_session()
    q = (sa.select(Organisation, sa.func.count(),
                   sa.func.sum(sa.case((has_max(), 1), else_=0)),
                   sa.func.sum(sa.case((PublicChannel.status.in_(STOPPED), 1), else_=0)))
         .join(PublicChannel, PublicChannel.org_id == Organisation.id)
         .group_by(Organisation.id).order_by(Organisation.name))
    rows = [Summary(o, n, int(m or 0), int(s or 0))
            for o, n, m, s in session.execute(scoped(q, Organisation.id, user))]
    total = Summary(None, sum(r.total for r in rows), sum(r.with_max for r in rows),
                    sum(r.stopped for r in rows))
    q = (sa.select(PublicChannel.status, sa.func.count()).group_by(PublicChannel.status))
    total.by_status = {s: 0 for s in CHANNEL_STATUSES}
    total.by_status.update(dict(session.execute(scoped(q, PublicChannel.org_id, user)).all()))
    return [total, *rows]

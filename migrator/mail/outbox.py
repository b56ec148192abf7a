"""Claiming and finishing rows of an outbox table (e-mail and bot messages alike).

An outbox row is ``pending`` until a sender claims it: the claim marks it ``sending`` with
``next_attempt_at`` set to the end of a lease, and is committed before anything is sent.
A row still ``sending`` after its lease ended belongs to a sender that died between the
send and the "sent" commit; the next sender claims it again (at-least-once delivery: the
window is the one message that was in flight). Finishing a row is conditional on the lease
still being ours, so a sender that overran its lease never overwrites another's outcome.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED`` (several senders share the
work); on SQLite every transaction holds the database write lock, which serialises claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

DUE_STATUSES = ("pending", "sending")
MAX_BACKOFF_SECONDS = 6 * 3600


@dataclass
class Claim:
    """Rows claimed by one sender, with the lease that identifies the claim."""

    rows: list
    lease_until: datetime
    reclaimed: int  # rows taken over from a sender whose lease ran out


def claim_due(session: Session, model, *, limit: int, now: datetime, lease_seconds: int) -> Claim:
    """Claim up to ``limit`` due rows of ``model`` and COMMIT the claim."""
    query = (
        sa.select(model)
        .where(model.status.in_(DUE_STATUSES), model.next_attempt_at <= now)
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.scalars(query))
    lease_until = now + timedelta(seconds=lease_seconds)
    reclaimed = 0
    for row in rows:
        reclaimed += row.status == "sending"
        row.status = "sending"
        row.next_attempt_at = lease_until
    session.commit()
    for row in rows:  # from here on the sender changes rows with conditional UPDATEs only
        session.expunge(row)
    return Claim(rows, lease_until, reclaimed)


def backoff_seconds(attempts: int, base: int) -> int:
    """Exponential backoff: ``base`` after the first failure, doubling, capped at 6 hours."""
    return min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempts - 1))


def _ours(model, row, lease_until: datetime):
    return sa.update(model).where(
        model.id == row.id, model.status == "sending", model.next_attempt_at == lease_until
    )


def mark_sent(session: Session, model, row, lease_until: datetime, sent_at: datetime) -> bool:
    """Record a successful send (not committed); False if the lease was lost meanwhile."""
    result = session.execute(
        _ours(model, row, lease_until).values(
            status="sent", sent_at=sent_at, attempts=model.attempts + 1, last_error=None
        )
    )
    if result.rowcount:
        row.status, row.sent_at, row.last_error = "sent", sent_at, None
        row.attempts += 1
    return bool(result.rowcount)


def mark_failed_attempt(
    session: Session, model, row, lease_until: datetime, *, now: datetime, error: str,
    max_attempts: int, retry_base: int, permanent: bool = False,
) -> str | None:
    """Record a failed attempt (not committed): back to ``pending`` with backoff, or
    ``failed`` after ``max_attempts`` (at once when ``permanent``). Returns the new status,
    or None if the lease was lost meanwhile."""
    attempts = row.attempts + 1
    status = "failed" if permanent or attempts >= max_attempts else "pending"
    next_at = now + timedelta(seconds=backoff_seconds(attempts, retry_base))
    result = session.execute(
        _ours(model, row, lease_until).values(
            status=status, attempts=attempts, last_error=error[:1000], next_attempt_at=next_at
        )
    )
    if not result.rowcount:
        return None
    row.status, row.attempts, row.last_error, row.next_attempt_at = (
        status, attempts, error[:1000], next_at)
    return status


def release(session: Session, model, rows, lease_until: datetime, now: datetime) -> int:
    """Give claimed, unsent rows back (``pending``, due now); not committed."""
    released = 0
    for row in rows:
        result = session.execute(
            _ours(model, row, lease_until).values(status="pending", next_attempt_at=now)
        )
        if result.rowcount:
            row.status, row.next_attempt_at = "pending", now
            released += 1
    return released

"""Claiming and finishing rows of an outbox table (e-mail and bot messages alike).

An outbox row is ``pending`` until a sender claims it: the claim marks it ``sending`` with
``next_attempt_at`` set to the end of a lease, and is committed before anything is sent.
A row still ``sending`` after its lease ended belongs to a sender that died between the
send and the "sent" commit; the next sender claims it again (at-least-once delivery: the
window is the one message that was in flight). Finishing a row is conditional on the lease
still being ours, so a sender that overran its lease never overwrites another's outcome.

The claim itself is :func:`migrator.db.claim`, shared with the engine's steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from migrator.db import claim, utcnow

log = logging.getLogger("migrator.mail")

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
    lease_until = now + timedelta(seconds=lease_seconds)
    reclaimed = 0

    def take(row) -> None:
        nonlocal reclaimed
        reclaimed += row.status == "sending"
        row.status = "sending"
        row.next_attempt_at = lease_until

    rows = claim(session, sa.select(model)
                 .where(model.status.in_(DUE_STATUSES), model.next_attempt_at <= now)
                 .order_by(model.next_attempt_at, model.id).limit(limit), take)
    for row in rows:  # from here on the sender changes rows with conditional UPDATEs only
        session.expunge(row)
    return Claim(rows, lease_until, reclaimed)


def backoff_seconds(attempts: int, base: int) -> int:
    """Exponential backoff: ``base`` after the first failure, doubling, capped at 6 hours."""
    return min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempts - 1))


def _ours(model, row, lease_until: datetime):
    # a Core UPDATE of the table (the ORM's bulk-update bookkeeping costs more than the
    # statement; the rows were expunged at the claim, their attributes are set by hand)
    c = model.__table__.c
    return sa.update(model.__table__).where(
        c.id == row.id, c.status == "sending", c.next_attempt_at == lease_until
    )


def mark_sent(session: Session, model, row, lease_until: datetime, sent_at: datetime) -> bool:
    """Record a successful send (not committed); False if the lease was lost meanwhile."""
    result = session.execute(
        _ours(model, row, lease_until).values(
            status="sent", sent_at=sent_at, attempts=model.__table__.c.attempts + 1,
            last_error=None
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


# --- the sender loop shared by every outbox ---------------------------------------------


@dataclass
class SendStats:
    """What one sender run did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0  # failed this time, back to pending with backoff
    failed: int = 0  # gave up (attempts exhausted or permanent refusal)
    resent: int = 0  # taken over from a sender that died (lease ran out): sent again
    released: int = 0  # claimed but not tried (lease nearly over): back to pending


@dataclass
class Failure:
    """Why one row was not sent. ``down``: the channel itself is unreachable, so the rest of
    the claim fails the same way without trying and the run stops."""

    error: str
    permanent: bool = False
    down: bool = False


def send_claimed(
    session: Session, model, claim: Claim, send: Callable[[object], Failure | None], *,
    stats: SendStats, now: datetime, lease_seconds: int, max_attempts: int, retry_base: int,
    on_sent: Callable[[object], None] | None = None,
    on_failed: Callable[[object, str], None] | None = None, deadline: float | None = None,
) -> bool:
    """Send one claim's rows with ``send(row)`` (None when sent), each outcome committed on
    its own: a sender killed at any point leaves at most the row in flight to go out again.

    Stops early, giving the untried rows back, when the lease is nearly over or the run's
    time for this outbox (``deadline``, a ``time.monotonic()``) is up. Returns False when
    the run should stop (that, or the channel is down)."""
    started = time.monotonic()
    down: Failure | None = None
    for index, row in enumerate(claim.rows):
        at = time.monotonic()
        if at - started > lease_seconds * 0.8 or (deadline is not None and at > deadline):
            stats.released += release(session, model, claim.rows[index:], claim.lease_until,
                                      now)
            session.commit()
            if at - started > lease_seconds * 0.8:
                log.warning("%s batch stopped before its lease ran out; %d released",
                            model.__tablename__, stats.released)
            return False
        failure = down or send(row)
        if failure is not None and failure.down:
            down = failure
        if failure is None:
            if mark_sent(session, model, row, claim.lease_until, utcnow()):
                if on_sent is not None:
                    on_sent(row)
                stats.sent += 1
            session.commit()
            continue
        status = mark_failed_attempt(
            session, model, row, claim.lease_until, now=now, error=failure.error,
            max_attempts=max_attempts, retry_base=retry_base, permanent=failure.permanent)
        if status == "failed":
            if on_failed is not None:
                on_failed(row, failure.error)
            stats.failed += 1
        elif status == "pending":
            stats.retried += 1
        session.commit()
        log.warning("%s %s attempt %d failed: %s", model.__tablename__, row.idem_key,
                    row.attempts, failure.error)
    return down is None

"""Rate limiters for the Max Bot API (30 requests per second per bot token).

Both limiters keep a sliding log of the moments requests were let out and guarantee that
ANY window of ``window`` (1 s) holds at most ``rps - headroom`` of them - not just aligned
seconds. ``rps`` is the platform's limit (30); the platform counts a request when it
arrives, a little later than ``acquire()`` returned and with some jitter (thread
scheduling, the network), and the one request of ``headroom`` absorbs that jitter, so the
server's own one-second count stays at or under ``rps`` while the work goes out at
``rps - 1`` (29) requests per second sustained.

A 429 slows every process down, not just the one that got it: :meth:`penalise` blocks the
bucket until the back-off (the server's ``Retry-After`` when it sent one) is over. The
database limiter records that as a full window of hits dated to end when the back-off does,
so every process sharing the table waits too.

* :class:`MemoryLimiter` - thread-safe, one process.
* :class:`DatabaseLimiter` - shared by all processes of one installation through the
  ``max_rate_hit`` table (SQLite or PostgreSQL). Concurrent acquirers are serialised with
  ``pg_advisory_xact_lock`` on PostgreSQL and ``BEGIN IMMEDIATE`` on SQLite. The machines
  sharing a bucket must have synchronised clocks (``time.time()`` is the clock everywhere).

The bucket column holds a SHA-256 of whatever label the caller gives (normally the token),
never the label itself.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

log = logging.getLogger("migrator.max")

DEFAULT_WINDOW = 1.0  # seconds: the platform's window
DEFAULT_HEADROOM = 1  # requests per window kept free for arrival jitter
KEEP_HITS_FOR = 60.0  # seconds; older hits are deleted now and then
CLEANUP_EVERY = 200  # acquisitions between two deletions of old hits (per limiter)


class RateLimiter(Protocol):
    """Anything with a blocking ``acquire()``; the client calls it before every attempt."""

    def acquire(self) -> None: ...


def allowed_per_window(rps: int, headroom: int) -> int:
    """How many requests a window lets out: the limit less the headroom, at least one."""
    return max(1, rps - headroom)


def bucket_key(label: str) -> str:
    """The value stored in ``max_rate_hit.bucket`` for ``label`` (e.g. a bot token)."""
    return hashlib.sha256(label.encode("utf-8")).hexdigest()


class MaxRateHit(SQLModel, table=True):
    """One request let out by a :class:`DatabaseLimiter`: the sliding log, per bucket."""

    __tablename__ = "max_rate_hit"
    __table_args__ = (sa.Index("ix_max_rate_hit_bucket_at", "bucket", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 (hex) of the limiter's label, normally the bot token; never the token itself
    bucket: str = Field(max_length=64, nullable=False)
    # time.time() when the request was let out (seconds since the epoch, UTC)
    at: float = Field(nullable=False)

    def __repr__(self) -> str:
        return f"<MaxRateHit {self.bucket[:8]}… at={self.at:.3f}>"


class MemoryLimiter:
    """At most ``rps - headroom`` acquisitions in any ``window`` seconds, within one process."""

    def __init__(
        self,
        rps: int,
        *,
        window: float = DEFAULT_WINDOW,
        headroom: int = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rps < 1:
            raise ValueError("rps must be at least 1")
        self.rps = rps
        self.allowed = allowed_per_window(rps, headroom)
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._hits: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until one more request may go out, and record it; the time it was granted."""
        while True:
            with self._lock:
                now = self._clock()
                while self._hits and self._hits[0] <= now - self.window:
                    self._hits.popleft()
                if now < self._blocked_until:
                    wait = self._blocked_until - now
                elif len(self._hits) < self.allowed:
                    self._hits.append(now)
                    return now
                else:
                    wait = self._hits[0] + self.window - now
            self._sleep(max(wait, 0.001))

    def penalise(self, seconds: float) -> None:
        """After a 429: nobody acquires for ``seconds``."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(seconds, 0.0))

    def __repr__(self) -> str:
        return f"MemoryLimiter(rps={self.rps}, allowed={self.allowed}, window={self.window})"


class DatabaseLimiter:
    """At most ``rps - headroom`` acquisitions in any ``window`` seconds across processes
    sharing a DB.

    ``engine`` is an SQLAlchemy engine on SQLite or PostgreSQL where the ``max_rate_hit``
    table exists (created by the app's migrations, or ``MaxRateHit.__table__.create``).
    """

    def __init__(
        self,
        engine: Engine,
        bucket: str,
        rps: int,
        *,
        window: float = DEFAULT_WINDOW,
        headroom: int = DEFAULT_HEADROOM,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rps < 1:
            raise ValueError("rps must be at least 1")
        self.engine = engine
        self.bucket = bucket_key(bucket)
        self.rps = rps
        self.allowed = allowed_per_window(rps, headroom)
        self.window = window
        self.spacing = window / (rps * 1.5)  # pacing: no bursts (see _decide)
        self._sleep = sleep
        self._is_sqlite = engine.dialect.name == "sqlite"
        if not self._is_sqlite and engine.dialect.name != "postgresql":
            raise ValueError(
                f"DatabaseLimiter needs SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        # advisory lock key: the first 8 bytes of the bucket hash as a signed bigint
        self._lock_key = int.from_bytes(bytes.fromhex(self.bucket[:16]), "big", signed=True)
        self._since_cleanup = 0
        self._table = MaxRateHit.__table__.name

    def acquire(self) -> None:
        """Block until one more request may go out, and record it in the shared table."""
        while True:
            cleanup = self._since_cleanup >= CLEANUP_EVERY
            try_once = self._try_sqlite if self._is_sqlite else self._try_postgres
            wait = try_once(cleanup)
            if wait is None:
                self._since_cleanup = 0 if cleanup else self._since_cleanup + 1
                return
            self._sleep(max(wait, 0.001))

    def _decide(self, count: int, oldest: float | None, newest: float | None,
                now: float) -> float | None:
        """None when a hit may be recorded now, else how long to wait. Hits dated in the
        future (a back-off, see :meth:`penalise`) count until their window ends.

        Besides the window, hits are paced at least ``window / rps`` apart: a burst of a
        whole window's worth at once would let a little network jitter squeeze one window
        too many into the platform's count."""
        if count >= self.allowed:
            assert oldest is not None
            return oldest + self.window - now
        if newest is not None and now - newest < self.spacing:
            return newest + self.spacing - now
        return None

    def penalise(self, seconds: float) -> None:
        """After a 429: a full window of hits ending ``seconds`` from now, so that every
        process sharing the bucket waits that long."""
        seconds = max(seconds, 0.0)
        until = time.time() + seconds
        table = MaxRateHit.__table__
        rows = [{"bucket": self.bucket, "at": until - self.window}] * self.allowed
        with self.engine.begin() as conn:
            conn.execute(sa.insert(table), rows)
        log.info("Max answered 429: every process waits %.2f s", seconds)

    def _try_sqlite(self, cleanup: bool) -> float | None:
        # Its own DBAPI connection and explicit statements, whatever transaction mode the
        # app's engine configured: BEGIN IMMEDIATE takes the write lock up front, so two
        # processes can never both count 29 and both insert.
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            if raw.driver_connection.in_transaction:
                cur.execute("ROLLBACK")
            cur.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                cur.execute(
                    f"SELECT COUNT(*), MIN(at), MAX(at) FROM {self._table} "
                    "WHERE bucket = ? AND at > ?",
                    (self.bucket, now - self.window),
                )
                count, oldest, newest = cur.fetchone()
                wait = self._decide(count, oldest, newest, now)
                if wait is None:
                    cur.execute(
                        f"INSERT INTO {self._table} (bucket, at) VALUES (?, ?)", (self.bucket, now)
                    )
                    if cleanup:
                        cur.execute(
                            f"DELETE FROM {self._table} WHERE bucket = ? AND at < ?",
                            (self.bucket, now - KEEP_HITS_FOR),
                        )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
            return wait
        finally:
            raw.close()

    def _try_postgres(self, cleanup: bool) -> float | None:
        table = MaxRateHit.__table__
        with self.engine.begin() as conn:
            # held until this transaction ends; serialises acquirers of the same bucket only
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(self._lock_key)))
            now = time.time()  # read after the lock, so hits are inserted in time order
            count, oldest, newest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.at), sa.func.max(table.c.at))
                .where(table.c.bucket == self.bucket, table.c.at > now - self.window)
            ).one()
            wait = self._decide(count, oldest, newest, now)
            if wait is None:
                conn.execute(sa.insert(table).values(bucket=self.bucket, at=now))
                if cleanup:
                    conn.execute(
                        sa.delete(table).where(
                            table.c.bucket == self.bucket, table.c.at < now - KEEP_HITS_FOR
                        )
                    )
            return wait

    def __repr__(self) -> str:
        return (
            f"DatabaseLimiter(bucket={self.bucket[:8]}…, rps={self.rps}, allowed={self.allowed}, "
            f"window={self.window}, dialect={self.engine.dialect.name})"
        )

"""The readiness checks, shared by ``/readyz``, ``flask doctor`` and «Состояние системы».

Each check gives a :class:`Check`: its name, whether it holds, whether readiness requires
it, and a message (an English msgid with parameters, translated where it is shown). The
calls that leave the machine (Max ``GET /me`` and ``GET /subscriptions``, the SMTP session)
are cached for :data:`REMOTE_TTL` seconds per process, so a probe every few seconds costs
Max and the mail server one call a minute.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_babel import lazy_gettext as _l

from migrator.config import DEFAULT_SECRET_KEY
from migrator.db import alembic_config, get_session, is_sqlite, utcnow
from migrator.engine.models import Heartbeat
from migrator.mail.models import OutboxMessage
from migrator.mail.service import check_smtp
from migrator.max.errors import MaxError
from migrator.max.service import get_client, webhook_url
from migrator.people.invite_models import BotMessage

HEARTBEAT_MAX_AGE = 120  # seconds: the scheduler beats every few seconds
REMOTE_TTL = 60.0  # seconds a Max or SMTP answer is reused
UNSENT = ("pending", "sending")

LABELS = {
    "database": _l("Database"),
    "migrations": _l("Database schema"),
    "scheduler": _l("Scheduler"),
    "max": _l("Max bot token"),
    "webhook": _l("Webhook subscription"),
    "smtp": _l("Mail server (SMTP)"),
    "outbox": _l("Outgoing messages"),
    "config": _l("Configuration"),
}


@dataclass
class Check:
    name: str
    ok: bool
    message: object  # a lazy translation (``_l(msgid, **params)``), rendered where shown
    required: bool = True

    @property
    def label(self) -> str:
        return str(LABELS.get(self.name, self.name))

    def text(self) -> str:
        return str(self.message)

    def as_json(self) -> dict:
        return {"ok": self.ok, "required": self.required, "detail": self.text()}


@dataclass
class Report:
    checks: list[Check]

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.required and not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failing

    def as_json(self) -> dict:
        return {"status": "ok" if self.ok else "fail",
                "failing": [c.name for c in self.failing],
                "checks": {c.name: c.as_json() for c in self.checks}}


# --- the remote answers' cache -------------------------------------------------------------

_cache: dict[tuple, tuple[float, object]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(key: tuple, compute):
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = compute()
    with _cache_lock:
        _cache[key] = (time.monotonic() + REMOTE_TTL, value)
    return value


def _secret_key(*parts: str) -> tuple:
    """A cache key that holds no secret (the token is hashed)."""
    return tuple(hashlib.sha256(p.encode()).hexdigest()[:16] for p in parts)


# --- the checks ------------------------------------------------------------------------------

def check_database() -> Check:
    try:
        get_session().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        try:
            get_session().rollback()
        except sa.exc.SQLAlchemyError:
            get_session().close()
        return Check("database", False, _l(
            "does not answer: %(error)s",
            error=type(getattr(exc, "orig", None) or exc).__name__))
    return Check("database", True, _l("answers"))


def schema_revisions() -> tuple[str | None, str | None]:
    """(the database's Alembic revision, the code's head)."""
    head = ScriptDirectory.from_config(
        alembic_config(current_app.config["DATABASE_URL"])).get_current_head()
    current = MigrationContext.configure(get_session().connection()).get_current_revision()
    return current, head


def check_migrations() -> Check:
    try:
        current, head = schema_revisions()
    except sa.exc.SQLAlchemyError:
        return Check("migrations", False, _l("the revision cannot be read"))
    if current != head:
        return Check("migrations", False, _l(
            "at revision %(current)s, the code needs %(head)s: run «db upgrade»",
            current=current or "—", head=head))
    return Check("migrations", True, _l("at the head revision %(head)s", head=head))


def heartbeat(name: str = "scheduler") -> Heartbeat | None:
    return get_session().get(Heartbeat, name)


def check_scheduler(now: datetime | None = None) -> Check:
    now = now or utcnow()
    hb = heartbeat()
    if hb is None:
        return Check("scheduler", False, _l("has never run: start «flask scheduler»"))
    age = int((now - hb.seen_at).total_seconds())
    if age > HEARTBEAT_MAX_AGE:
        return Check("scheduler", False, _l(
            "silent for %(age)d s (allowed %(max)d s)", age=age, max=HEARTBEAT_MAX_AGE))
    return Check("scheduler", True, _l("last heartbeat %(age)d s ago", age=max(age, 0)))


@dataclass
class MaxStatus:
    """What Max said about our bot: its name, and the webhook URLs it delivers to."""

    error: str | None = None
    username: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    subscriptions_error: str | None = None


def max_status() -> MaxStatus:
    """``GET /me`` and ``GET /subscriptions``, cached for :data:`REMOTE_TTL` seconds."""
    cfg = current_app.config
    if not cfg["MAX_BOT_TOKEN"]:
        return MaxStatus(error="MAX_BOT_TOKEN is not set")

    def ask() -> MaxStatus:
        try:
            with get_client(timeout=5.0, max_retries=0) as client:
                me = client.get_me()
                status = MaxStatus(username=me.get("username") or me.get("name"))
                try:
                    status.subscriptions = [s.get("url", "") for s in client.get_subscriptions()]
                except MaxError as exc:
                    status.subscriptions_error = _max_error(exc)
                return status
        except MaxError as exc:
            return MaxStatus(error=_max_error(exc))

    return _cached(("max",) + _secret_key(cfg["MAX_API_URL"], cfg["MAX_BOT_TOKEN"]), ask)


def _max_error(exc: MaxError) -> str:
    return f"{exc.status or '—'} {exc.code or type(exc).__name__}"


def check_max(status: MaxStatus | None = None) -> Check:
    status = status or max_status()
    if status.error:
        return Check("max", False, _l(
            "Max refused or did not answer: %(error)s", error=status.error))
    return Check("max", True, _l("accepted, bot @%(name)s", name=status.username or "—"))


def check_webhook(status: MaxStatus | None = None) -> Check:
    required = current_app.config["ENV"] == "production"
    status = status or max_status()
    url = webhook_url()
    if status.error or status.subscriptions_error:
        return Check("webhook", False, _l(
            "the subscriptions cannot be read: %(error)s",
            error=status.error or status.subscriptions_error), required=required)
    if url not in status.subscriptions:
        return Check("webhook", False, _l(
            "Max does not deliver to %(url)s: subscribe it (see the runbook)", url=url),
            required=required)
    return Check("webhook", True, _l("Max delivers to %(url)s", url=url), required=required)


def check_mail() -> Check:
    cfg = current_app.config
    where = f"{cfg['SMTP_HOST']}:{cfg['SMTP_PORT']}"
    error = _cached(("smtp",) + _secret_key(where, cfg.get("SMTP_USER") or ""),
                    lambda: check_smtp(cfg))
    if error:
        return Check("smtp", False, _l(
            "%(where)s does not take a session: %(error)s", where=where, error=error))
    return Check("smtp", True, _l("%(where)s takes a session", where=where))


def as_utc(value) -> datetime | None:
    """An aggregate's datetime as aware UTC (SQLite gives ``MIN()`` of a datetime as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def oldest_unsent(now: datetime | None = None) -> float | None:
    """Age in seconds of the oldest unsent e-mail or bot message, None when none waits."""
    now = now or utcnow()
    session = get_session()
    times = [session.scalar(sa.select(sa.func.min(model.created_at))
                            .where(model.status.in_(UNSENT)))
             for model in (OutboxMessage, BotMessage)]
    times = [t for t in times if t is not None]
    if not times:
        return None
    return max((now - min(as_utc(t) for t in times)).total_seconds(), 0.0)


def check_outbox(now: datetime | None = None) -> Check:
    limit = current_app.config["OUTBOX_MAX_AGE_SECONDS"]
    age = oldest_unsent(now)
    if age is None:
        return Check("outbox", True, _l("nothing waits to be sent"))
    if age > limit:
        return Check("outbox", False, _l(
            "the oldest message waits for %(age)d min (allowed %(max)d min)",
            age=age // 60, max=limit // 60))
    return Check("outbox", True, _l(
        "the oldest message waits for %(age)d min", age=age // 60))


def readiness() -> Report:
    """Every ``/readyz`` check; the database ones first (nothing else works without it)."""
    db = check_database()
    if not db.ok:
        return Report([db, Check("migrations", False, _l("the database does not answer"))])
    local = [db, check_migrations(), check_scheduler(), check_outbox()]
    # end the read transaction before calling out (on SQLite it holds the write lock)
    get_session().commit()
    status = max_status()
    db, migrations, scheduler, outbox = local
    return Report([db, migrations, scheduler, check_max(status), check_webhook(status),
                   check_mail(), outbox])


def config_problems() -> list:
    """Configuration that works but should not go to production like this."""
    cfg = current_app.config
    prod = cfg["ENV"] == "production"
    problems: list = []
    if cfg["SECRET_KEY"] == DEFAULT_SECRET_KEY:
        problems.append(_l("SECRET_KEY is the development default"))
    if not cfg["MAX_BOT_TOKEN"]:
        problems.append(_l("MAX_BOT_TOKEN is not set"))
    if not cfg["MAX_WEBHOOK_SECRET"]:
        problems.append(_l("MAX_WEBHOOK_SECRET is not set"))
    if prod and not cfg["MIGRATOR_BASE_URL"].startswith("https://"):
        problems.append(_l("MIGRATOR_BASE_URL must be https:// in production "
                           "(Max delivers webhooks over HTTPS only)"))
    if prod and is_sqlite(cfg["DATABASE_URL"]):
        problems.append(_l("DATABASE_URL is SQLite: use PostgreSQL in production"))
    if prod and not cfg["SESSION_COOKIE_SECURE"]:
        problems.append(_l("SESSION_COOKIE_SECURE is off in production"))
    return problems


def check_config() -> Check:
    problems = config_problems()
    if problems:
        return Check("config", False, "; ".join(str(p) for p in problems))
    return Check("config", True, _l("no problems found"))


def doctor() -> Report:
    """What ``flask doctor`` checks: the configuration, then every readiness check."""
    return Report([check_config()] + readiness().checks)

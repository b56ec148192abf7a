"""The 401 circuit breaker: a revoked or wrong bot token stops all Max work at once.

Without it every due step would fail on its own 401 and be escalated one by one. At the
first 401 the runner calls :func:`trip`: the breaker's row in ``setting`` records when, the
event is audited (``max.auth_failed``), one system attention item is raised, the admins get
one e-mail and every page shows a banner. While it is open no step runs and no bot message
is sent; :func:`allow_max_work` asks ``GET /me`` at most once a minute and closes the
breaker by itself (audited as ``max.auth_restored``, the item resolved) as soon as Max
answers again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale, gettext
from sqlmodel import select

from migrator.attention.service import raise_item, resolve
from migrator.audit.service import record
from migrator.auth.models import User
from migrator.db import get_session, utcnow
from migrator.groups.attention import MAX_AUTH_FAILED
from migrator.mail.service import queue_email, valid_address
from migrator.max.errors import MaxAuthError, MaxError
from migrator.waves.models import Setting

log = logging.getLogger("migrator.max")

BREAKER_KEY = "max.auth_broken"  # row in ``setting``: ISO time of the first 401
PROBE_KEY = "max.auth_probe"  # row in ``setting``: ISO time of the last GET /me probe
PROBE_EVERY = timedelta(minutes=1)


def _get(key: str) -> datetime | None:
    row = get_session().get(Setting, key)
    if row is None or not row.value:
        return None
    try:
        return datetime.fromisoformat(row.value)
    except ValueError:
        return None


def _set(key: str, when: datetime | None) -> None:
    session = get_session()
    row = session.get(Setting, key)
    if when is None:
        if row is not None:
            session.delete(row)
        return
    row = row or Setting(key=key, value="")
    row.value = when.isoformat()
    row.updated_at = utcnow()
    session.add(row)


def tripped_at() -> datetime | None:
    """When the breaker opened (the first 401), or None while Max accepts the token."""
    return _get(BREAKER_KEY)


def _admin_emails() -> list[str]:
    rows = get_session().exec(select(User.email).where(User.role == "admin",
                                                       User.is_active.is_(True))).all()
    return sorted({e for e in rows if valid_address(e)})


def trip(error: MaxAuthError | str) -> bool:
    """Open the breaker (in the caller's transaction, not committed). True when it was
    closed before: then the event is audited and the admins get one e-mail."""
    if tripped_at() is not None:
        return False
    now = utcnow()
    _set(BREAKER_KEY, now)
    _set(PROBE_KEY, now)  # the 401 itself was the first probe
    record("max.auth_failed", object_type="max_bot", summary={"error": str(error)[:300]})
    # one system item for the incident, on «Требует внимания» until the breaker closes
    raise_item("system", 0, MAX_AUTH_FAILED, now=now)
    with force_locale("ru"):
        subject = gettext("Migrator: Max refuses the bot token, all Max work is stopped")
        text = gettext(
            "Max answered 401 (the bot token is wrong or was revoked). Migrator stopped every "
            "Max operation: no steps run and the bot sends nothing. Set a valid "
            "MAX_BOT_TOKEN; the work resumes by itself as soon as Max accepts it again.")
    for addr in _admin_emails():
        queue_email(f"max.auth_failed:{now.isoformat()}:{addr}", addr, subject, text,
                    kind="max_auth_failed")
    log.error("Max refused the bot token (401): all Max work stopped")
    return True


def allow_max_work(client_factory) -> bool:
    """True when Max work may go on. While the breaker is open, ``GET /me`` is asked at
    most once a minute; when it answers, the breaker closes. Commits what it changes."""
    session = get_session()
    since = tripped_at()
    if since is None:
        return True
    now = utcnow()
    probed = _get(PROBE_KEY)
    if probed is not None and now - probed < PROBE_EVERY:
        session.commit()
        return False
    _set(PROBE_KEY, now)
    session.commit()
    try:
        client_factory().get_me()
    except MaxError as exc:
        log.warning("Max still refuses the bot token: %s", exc)
        return False
    _set(BREAKER_KEY, None)
    _set(PROBE_KEY, None)
    record("max.auth_restored", object_type="max_bot",
           summary={"stopped_since": since.isoformat()})
    resolve("system", 0, MAX_AUTH_FAILED)
    session.commit()
    log.info("Max accepts the bot token again: Max work resumes")
    return True


def banner_visible() -> bool:
    """Whether pages should say that Max work is stopped (any signed-in user sees it)."""
    try:
        return current_app.config.get("MAX_BOT_TOKEN") is not None and tripped_at() is not None
    except Exception:  # a page must render even if the settings table is unreachable
        return False

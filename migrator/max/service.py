"""The app's side of Max: the configured client, chat visibility, pre-flight and linking.

Transactions and Max API calls
------------------------------
On SQLite every transaction starts with ``BEGIN IMMEDIATE``, so a session that has merely
*read* something holds the database write lock until it commits or rolls back. The shared
:class:`~migrator.max.ratelimit.DatabaseLimiter` takes that same lock (``BEGIN IMMEDIATE``
on its own pooled connection) before every API call; called from inside an open
transaction of the same process it would wait on itself until the busy timeout. So:

* code that calls Max commits (or rolls back) its session first - :func:`refresh_chat`,
  the webhook's follow-up refresh, the CLI and the engine all do;
* as a safety net, :class:`AppLimiter` notices a caller on SQLite whose session is still in
  a transaction and then counts that call on a per-process :class:`MemoryLimiter` of the
  same rate instead of the database (logged as a warning): slower processes may briefly
  exceed the shared budget, but nothing deadlocks;
* ``on_call`` writes the ``max.call`` audit event into the caller's transaction when one is
  open (no second writer needed; it commits or rolls back with the caller's work), else in
  its own short transaction, committed at once;
* a sender that records each call's outcome right after it (the bot message outbox) wraps
  its calls in :func:`calls_audited_with_outcome`: the events wait in memory and go into the
  transaction that records the outcome (:func:`record_calls`), one commit per call instead
  of two. A crash between the answer and that commit loses both: the message is sent
  again, and that call is audited.

On PostgreSQL the limiter uses an advisory lock on its own connection and none of this
can block, but the same rules keep transactions short while waiting for the network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app, g, has_app_context
from sqlmodel import Session, select

from migrator.attention.service import sync_chat_link
from migrator.audit.service import record
from migrator.auth.service import scope_org_ids_subquery, scoped
from migrator.db import get_engine, get_session, is_sqlite, utcnow
from migrator.groups.models import SourceGroup
from migrator.max.client import MaxClient
from migrator.max.errors import MaxError, MaxForbidden, MaxNotFound
from migrator.max.models import MaxChat, MaxChatMember
from migrator.max.ratelimit import DatabaseLimiter, MemoryLimiter
from migrator.ops import instruments
from migrator.org.models import Organisation
from migrator.waves.models import Setting

log = logging.getLogger("migrator.max")

# Update types the webhook subscription (and the poller) asks Max for.
UPDATE_TYPES = (
    "bot_added", "bot_removed", "bot_started", "bot_stopped", "user_added", "user_removed",
    "chat_title_changed", "message_callback", "message_created",
)
WEBHOOK_PATH = "/max/webhook"


# Sent (sender: the MaxChat, in the refresh's transaction) whenever a check finds the chat
# has a join link: people waiting for it get it (migrator.engine.fallback listens).
chat_link_known = Namespace().signal("chat-link-known")

POLL_MARKER_KEY = "max.poll_marker"  # row in ``setting``: the long-polling marker


def stored_poll_marker() -> int | None:
    """The ``GET /updates`` marker the last poll stored, or None before the first poll."""
    row = get_session().get(Setting, POLL_MARKER_KEY)
    try:
        return int(row.value) if row is not None else None
    except ValueError:
        return None


def store_poll_marker(marker: int | None) -> None:
    """Remember ``marker`` for the next poll (in the caller's transaction; not committed)."""
    if marker is None:
        return
    session = get_session()
    row = session.get(Setting, POLL_MARKER_KEY) or Setting(key=POLL_MARKER_KEY, value="")
    row.value = str(int(marker))
    row.updated_at = utcnow()
    session.add(row)


class LinkConflict(Exception):
    """A mapping that the linking rules refuse (answered 409 by the API)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- the client ----------------------------------------------------------------------

_memory_limiters: dict[tuple[str, int], MemoryLimiter] = {}
_memory_lock = threading.Lock()


def _memory_limiter(token: str, rps: int) -> MemoryLimiter:
    with _memory_lock:
        key = (token, rps)
        if key not in _memory_limiters:
            _memory_limiters[key] = MemoryLimiter(rps)
        return _memory_limiters[key]


def _session_in_transaction() -> bool:
    session = g.get("db_session") if has_app_context() else None
    return session is not None and session.in_transaction()


class AppLimiter:
    """The shared :class:`DatabaseLimiter`, never waited on while holding the SQLite lock."""

    def __init__(self, db_limiter: DatabaseLimiter, fallback: MemoryLimiter, sqlite: bool):
        self.db_limiter = db_limiter
        self.fallback = fallback
        self.sqlite = sqlite

    def acquire(self) -> None:
        started = time.monotonic()
        try:
            if self.sqlite and _session_in_transaction():
                log.warning("Max call made inside an open SQLite transaction: commit first; "
                            "counted on the in-process limiter")
                self.fallback.acquire()
                return
            self.db_limiter.acquire()
        finally:
            instruments.limiter_waited(time.monotonic() - started)

    def penalise(self, seconds: float) -> None:
        """After a 429: every process of the installation backs off."""
        self.fallback.penalise(seconds)
        if self.sqlite and _session_in_transaction():
            return
        self.db_limiter.penalise(seconds)


def _chat_org_id(session, chat_id) -> int | None:
    """The organisation of a known chat: its own, else that of a group linked to it."""
    if chat_id is None:
        return None
    try:
        chat_id = int(chat_id)
    except (TypeError, ValueError):
        return None
    with session.no_autoflush:
        row = session.execute(
            sa.select(MaxChat.id, MaxChat.org_id).where(MaxChat.chat_id == chat_id)).first()
        if row is None:
            return None
        if row.org_id is not None:
            return row.org_id
        return session.scalar(sa.select(SourceGroup.org_id)
                              .where(SourceGroup.max_chat_id == row.id)
                              .order_by(SourceGroup.id).limit(1))


_DEFERRED: ContextVar[list[dict] | None] = ContextVar("max_calls_deferred", default=None)


@contextmanager
def calls_audited_with_outcome() -> Iterator[None]:
    """Inside, the ``max.call`` events wait for :func:`record_calls` (see the module doc)."""
    token = _DEFERRED.set([])
    try:
        yield
    finally:
        left = _DEFERRED.get()
        _DEFERRED.reset(token)
        if left:  # a caller that never recorded them: audit them now, each on its own
            with Session(get_engine(), expire_on_commit=False) as own:
                for event in left:
                    record(**event, org_id=_chat_org_id(own, event["object_id"]), session=own)
                own.commit()


def record_calls() -> None:
    """The waiting ``max.call`` events into the context session's transaction (the one that
    records the calls' outcome; the caller commits it)."""
    waiting = _DEFERRED.get()
    if not waiting:
        return
    session = get_session()
    for event in waiting:
        record(**event, org_id=_chat_org_id(session, event["object_id"]))
    waiting.clear()


def _call_recorder(app):
    """The ``on_call`` hook: one ``max.call`` audit event per attempt (no token, no text)."""
    engine = get_engine(app)

    def on_call(method, template, status, latency_ms, chat_id):
        instruments.max_call(method, status)
        summary = {"method": method, "path": template, "status": status,
                   "latency_ms": round(latency_ms, 1), "chat_id": chat_id}
        waiting = _DEFERRED.get()
        if waiting is not None:
            waiting.append({"action": "max.call", "object_type": "max_chat",
                            "object_id": chat_id, "summary": summary})
            return
        if has_app_context() and _session_in_transaction():
            session = get_session()
            record("max.call", object_type="max_chat", object_id=chat_id,
                   org_id=_chat_org_id(session, chat_id), summary=summary)
            return
        with Session(engine, expire_on_commit=False) as own:
            record("max.call", object_type="max_chat", object_id=chat_id,
                   org_id=_chat_org_id(own, chat_id), summary=summary, session=own)
            own.commit()

    return on_call


def get_client(*, timeout: float = 10.0, max_retries: int = 4) -> MaxClient:
    """A :class:`MaxClient` for the configured bot (close it, or use it as a context manager).

    Rate limited by the installation-wide :class:`DatabaseLimiter` (bucket: SHA-256 of the
    token, ``MAX_RPS``) on the app's engine; every call audited as ``max.call``.
    Raises ``ValueError`` when ``MAX_BOT_TOKEN`` is not configured.
    """
    app = current_app._get_current_object()
    cfg = app.config
    token = cfg["MAX_BOT_TOKEN"]
    if not token:
        raise ValueError("MAX_BOT_TOKEN is not configured")
    engine = get_engine(app)
    rps = int(cfg["MAX_RPS"])
    limiter = AppLimiter(DatabaseLimiter(engine, token, rps), _memory_limiter(token, rps),
                         is_sqlite(engine))
    return MaxClient(cfg["MAX_API_URL"], token, limiter=limiter, timeout=timeout,
                     max_retries=max_retries, on_call=_call_recorder(app))


def webhook_url() -> str:
    return current_app.config["MIGRATOR_BASE_URL"].rstrip("/") + WEBHOOK_PATH


# --- chats: lookup, visibility -------------------------------------------------------


def chat_by_max_id(chat_id: int) -> MaxChat | None:
    return get_session().exec(select(MaxChat).where(MaxChat.chat_id == chat_id)).first()


def visible_chats_query(user, query=None):
    """``query`` (default ``SELECT MaxChat``) restricted to the chats ``user`` may see.

    Admins (and region-wide auditors) see every chat. Anyone scoped sees a chat when its
    organisation is in their scope - set when the bot was added by a linked employee, or at
    the first link - or when it serves one of their groups. Chats of unknown origin
    (``org_id`` unset, nobody linked yet) are for admins only: they could belong to anyone.
    """
    query = query if query is not None else select(MaxChat)
    sub = scope_org_ids_subquery(user)
    if sub is None:
        return query
    serves_scope = sa.exists().where(SourceGroup.max_chat_id == MaxChat.id,
                                     SourceGroup.org_id.in_(sub))
    return query.where(sa.or_(MaxChat.org_id.in_(sub), serves_scope))


def can_see_chat(chat: MaxChat | None, user) -> bool:
    if chat is None:
        return False
    q = visible_chats_query(user, select(MaxChat.id).where(MaxChat.id == chat.id))
    return get_session().exec(q).first() is not None


def groups_of_chat(chat: MaxChat, user=None) -> list[SourceGroup]:
    """Groups linked to ``chat`` (only those in the scope of ``user``, when given)."""
    query = select(SourceGroup).where(SourceGroup.max_chat_id == chat.id)
    if user is not None:
        query = scoped(query, SourceGroup.org_id, user)
    return list(get_session().exec(query.order_by(SourceGroup.key)).all())


def group_keys_by_chat(chat_ids: list[int], user=None) -> dict[int, list[str]]:
    """``{max_chat.id: [group keys]}`` for several chats in one query (only groups in the
    scope of ``user``, when given)."""
    if not chat_ids:
        return {}
    query = (sa.select(SourceGroup.max_chat_id, SourceGroup.key)
             .where(SourceGroup.max_chat_id.in_(chat_ids)).order_by(SourceGroup.key))
    if user is not None:
        query = scoped(query, SourceGroup.org_id, user)
    rows = get_session().execute(query).all()
    out: dict[int, list[str]] = {}
    for chat_id, key in rows:
        out.setdefault(chat_id, []).append(key)
    return out


def members_present(chat: MaxChat) -> int:
    return get_session().scalar(
        sa.select(sa.func.count()).select_from(MaxChatMember)
        .where(MaxChatMember.chat_id == chat.id, MaxChatMember.is_present.is_(True))
    ) or 0


def chat_json(chat: MaxChat, keys: list[str]) -> dict:
    return {
        "chat_id": chat.chat_id,
        "title": chat.title,
        "status": chat.status,
        "bot_is_admin": chat.bot_is_admin,
        "missing_permissions": chat.missing_permissions,
        "checked_at": chat.checked_at.isoformat() if chat.checked_at else None,
        "added_at": chat.added_at.isoformat() if chat.added_at else None,
        "group_keys": keys,
    }


# --- pre-flight ----------------------------------------------------------------------


def chats_needing_refresh(limit: int = 500) -> list[int]:
    """Max ids of chats the bot is in whose title and rights were not fetched since added."""
    return list(get_session().exec(
        select(MaxChat.chat_id).where(MaxChat.status != "removed", MaxChat.checked_at.is_(None))
        .order_by(MaxChat.id).limit(limit)
    ).all())


def refresh_chat(chat_id: int, client: MaxClient) -> str | None:
    """Fetch a chat's title and the bot's rights from Max and store them; COMMITS.

    Commits the session before calling Max (see the module notes) and again after
    storing. Returns None on success, else a short error text (also stored in the audit).
    """
    session = get_session()
    session.commit()  # no lock held while waiting for the network
    title = None
    error = None
    info: dict | None = None
    is_admin, perms = False, set()
    try:
        info = client.get_chat(chat_id) or {}
        title = info.get("title")
        rights = client.bot_rights(chat_id)
        is_admin = rights.is_admin or rights.is_owner
        perms = set(rights.permissions) if is_admin else set()
    except MaxError as exc:
        if exc.retryable:
            log.warning("chat %s not re-checked: %s", chat_id, exc)
            return str(exc)
        error = f"{exc.status} {exc.code}".strip()
    chat = chat_by_max_id(chat_id)
    if chat is None:
        session.rollback()
        return "unknown chat"
    if title:
        chat.title = title[:500]
    if info is not None:
        chat.link = join_link(info)
    chat.bot_is_admin = is_admin
    chat.bot_permissions = ",".join(sorted(perms))
    chat.checked_at = utcnow()
    if chat.missing_permissions:
        chat.rights_missing_since = chat.rights_missing_since or chat.checked_at
    else:
        chat.rights_missing_since = None
    session.add(chat)
    record("max.chat_checked", object_type="max_chat", object_id=chat.chat_id,
           org_id=chat.org_id,
           summary={"bot_is_admin": is_admin, "missing": chat.missing_permissions,
                    "link": chat.link, "error": error})
    sync_chat_link(chat)
    if chat.link:
        chat_link_known.send(chat)
    session.commit()
    log.info("chat %s checked: admin=%s missing=%s", chat_id, is_admin, chat.missing_permissions)
    return error


def join_link(info: dict) -> str | None:
    """The join link of a ``Chat`` answer (an https URL), or None when it has none."""
    link = info.get("link")
    if isinstance(link, str) and link.startswith("https://") and len(link) <= 500 \
            and not any(c.isspace() for c in link):
        return link
    return None


class RegisterError(Exception):
    """A chat that cannot be registered by its ID; ``code`` names why."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def register_chat(max_chat_id: int, client: MaxClient, *, org_id: int | None = None
                  ) -> tuple[MaxChat, bool]:
    """Make a chat whose ``bot_added`` was missed known: ``GET /chats/{chatId}`` must show
    the bot in it (``status: active``). Registers it as discovered (with ``org_id`` when
    given and the chat has none yet), audits ``max.chat_registered``, then fetches its
    rights. COMMITS. Returns ``(chat, created)``; ``created`` is False when the app already
    knew the chat with the bot in it (nothing changes then).

    Raises :class:`RegisterError` (``not_found``, ``bot_not_in_chat``, ``not_a_chat``,
    ``unavailable``) and changes nothing in that case.
    """
    session = get_session()
    session.commit()  # no lock held while waiting for the network
    try:
        info = client.get_chat(max_chat_id) or {}
    except MaxNotFound as exc:
        raise RegisterError("not_found") from exc
    except MaxForbidden as exc:
        raise RegisterError("bot_not_in_chat") from exc
    except MaxError as exc:
        raise RegisterError("unavailable", str(exc)) from exc
    if info.get("type") not in (None, "chat"):
        raise RegisterError("not_a_chat")
    if info.get("status") != "active":
        raise RegisterError("bot_not_in_chat")
    chat = chat_by_max_id(max_chat_id)
    if chat is not None and chat.status != "removed":
        session.commit()
        return chat, False
    if chat is None:
        chat = MaxChat(chat_id=max_chat_id, status="discovered")
    else:  # the bot is back in a chat the app saw it removed from
        linked = session.scalar(sa.select(sa.func.count()).select_from(SourceGroup)
                                .where(SourceGroup.max_chat_id == chat.id))
        chat.status = "linked" if linked else "discovered"
        chat.removed_at = None
    chat.title = str(info.get("title") or chat.title or "")[:500]
    chat.added_at = chat.added_at or utcnow()
    if chat.org_id is None and org_id is not None:
        chat.org_id = org_id
    chat.checked_at = None  # rights fetched below
    session.add(chat)
    session.flush()
    record("max.chat_registered", object_type="max_chat", object_id=chat.chat_id,
           org_id=chat.org_id, summary={"chat_id": chat.chat_id, "title": chat.title,
                                        "status": chat.status})
    session.commit()
    refresh_chat(max_chat_id, client)
    return chat_by_max_id(max_chat_id), True


RECHECK_FIRST = 60  # seconds: the first re-check after a step was postponed for rights
RECHECK_MAX = 600  # then backing off to every 10 minutes...
RECHECK_FOR = 24 * 3600  # ...for 24 hours; after that the daily re-check of every chat


def rights_recheck_interval(chat: MaxChat, now=None) -> float:
    """Seconds between two re-checks of a chat lacking rights: 60 s at first, doubling with
    the time they have been missing up to 10 minutes, daily after 24 hours."""
    now = now or utcnow()
    since = chat.rights_missing_since or chat.checked_at or now
    age = max(0.0, (now - since).total_seconds())
    if age >= RECHECK_FOR:
        return float(RECHECK_FOR)
    return float(min(RECHECK_MAX, max(RECHECK_FIRST, age)))


def rights_recheck_due(chat: MaxChat, now=None) -> bool:
    """Whether a chat lacking rights should be asked again now."""
    now = now or utcnow()
    if chat.status == "removed":
        return False
    if chat.checked_at is None:
        return True
    return (now - chat.checked_at).total_seconds() >= rights_recheck_interval(chat, now) - 1


def refresh_all(client: MaxClient) -> tuple[int, int]:
    """Re-check every chat the bot is in (the daily job, ``flask max refresh``); COMMITS.
    Returns ``(checked, not ready)``."""
    session = get_session()
    ids = list(session.scalars(sa.select(MaxChat.chat_id).where(MaxChat.status != "removed")
                               .order_by(MaxChat.id)).all())
    session.commit()
    problems = 0
    for chat_id in ids:
        error = refresh_chat(chat_id, client)
        chat = chat_by_max_id(chat_id)
        if error or (chat is not None and chat.missing_permissions):
            problems += 1
        session.commit()
    return len(ids), problems


def refresh_pending(client: MaxClient, limit: int = 500) -> int:
    """Refresh every chat still waiting for its first check; returns how many were done."""
    done = 0
    for chat_id in chats_needing_refresh(limit):
        if refresh_chat(chat_id, client) is None:
            done += 1
    return done


# --- linking -------------------------------------------------------------------------


def _who(user) -> str:
    return getattr(user, "email", None) or str(user)


def _org(org_id: int | None) -> Organisation | None:
    return get_session().get(Organisation, org_id) if org_id else None


def link_group(group: SourceGroup, chat: MaxChat, user) -> SourceGroup:
    """Map ``group`` to ``chat`` (not committed); :class:`LinkConflict` when the rules refuse.

    Rules: a removed chat cannot be linked; a group has one chat (re-linking needs an
    unlink first); a chat serves groups of one organisation subtree: its ``org_id`` is set
    to the group's organisation at the first link (or replaced, while no group is linked,
    since it was only a hint from whoever added the bot), and every further group must lie
    in that organisation's subtree. Idempotent for the same pair.
    """
    session = get_session()
    if group.max_chat_id == chat.id:
        return group
    if group.max_chat_id is not None:
        raise LinkConflict("group_already_linked",
                           "The group is already linked to another Max chat; unlink it first.")
    if chat.status == "removed":
        raise LinkConflict("chat_removed", "The bot was removed from this Max chat.")
    linked = session.scalar(sa.select(sa.func.count()).select_from(SourceGroup)
                            .where(SourceGroup.max_chat_id == chat.id)) or 0
    group_org = _org(group.org_id)
    chat_org = _org(chat.org_id)
    if chat_org is not None and linked and not group_org.path.startswith(chat_org.path):
        raise LinkConflict("other_organisation",
                           "The Max chat serves groups of another organisation.")
    before = {"max_chat_id": None, "chat_status": chat.status, "chat_org_id": chat.org_id}
    if chat_org is None or not linked and not group_org.path.startswith(chat_org.path):
        chat.org_id = group.org_id
    group.max_chat_id = chat.id
    group.linked_at = utcnow()
    group.linked_by_id = getattr(user, "id", None)
    group.updated_at = utcnow()
    chat.status = "linked"
    session.add_all([group, chat])
    session.flush()
    record("group.link", object_type="group", object_id=group.key, org_id=group.org_id,
           summary={"before": before,
                    "after": {"max_chat_id": chat.chat_id, "chat_status": chat.status,
                              "chat_org_id": chat.org_id},
                    "title": chat.title})
    log.info("group %r linked to chat %s by %s", group, chat.chat_id, _who(user))
    return group


def unlink_group(group: SourceGroup, user, reason: str = "") -> SourceGroup:
    """Remove the group's mapping (not committed); the chat goes back to discovered when it
    serves no other group. A no-op for an unlinked group. ``reason`` goes to the audit
    trail."""
    session = get_session()
    if group.max_chat_id is None:
        return group
    chat = session.get(MaxChat, group.max_chat_id)
    group.max_chat_id = None
    group.linked_at = None
    group.linked_by_id = None
    group.updated_at = utcnow()
    session.add(group)
    session.flush()
    remaining = session.scalar(sa.select(sa.func.count()).select_from(SourceGroup)
                               .where(SourceGroup.max_chat_id == chat.id)) or 0
    if not remaining and chat.status == "linked":
        chat.status = "discovered"
        session.add(chat)
    record("group.unlink", object_type="group", object_id=group.key, org_id=group.org_id,
           summary={"before": {"max_chat_id": chat.chat_id},
                    "after": {"max_chat_id": None, "chat_status": chat.status},
                    **({"reason": reason.strip()[:500]} if reason and reason.strip() else {})})
    log.info("group %r unlinked from chat %s by %s", group, chat.chat_id, _who(user))
    return group


def linkable_groups(chat: MaxChat, user, limit: int = 500) -> list[SourceGroup]:
    """Unlinked groups in the user's scope that may be linked to ``chat``."""
    query = scoped(select(SourceGroup).where(SourceGroup.max_chat_id.is_(None)),
                   SourceGroup.org_id, user)
    chat_org = _org(chat.org_id)
    if chat_org is not None and groups_of_chat(chat):
        sub = select(Organisation.id).where(Organisation.path.startswith(chat_org.path))
        query = query.where(SourceGroup.org_id.in_(sub))
    return list(get_session().exec(query.order_by(SourceGroup.name).limit(limit)).all())


def title_contains(text: str):
    """The chat's title contains ``text`` in any case. SQLite's ``lower()`` knows no Cyrillic:
    there the usual capitalisations of the text are tried."""
    if is_sqlite(get_engine()):
        variants = sorted({text, text.lower(), text.upper(), text.capitalize(), text.title()})
        return sa.or_(*[MaxChat.title.contains(v, autoescape=True) for v in variants])
    return MaxChat.title.icontains(text, autoescape=True)


def chats_for_group(group: SourceGroup, user, text: str = "", limit: int = 50
                    ) -> list[MaxChat]:
    """The chats the link picker offers for ``group``: ``user`` may see them, the bot is
    still in them, and :func:`link_group` would accept the pair - a chat serves the groups
    of one organisation subtree, so one already serving groups is offered only when its
    organisation is the group's or one above it. ``text``: part of the title, or the chat's
    Max id. At most ``limit`` chats, by title."""
    group_org = _org(group.org_id)
    ancestors = [int(p) for p in (group_org.path if group_org else "").split("/") if p]
    serves_any = sa.exists().where(SourceGroup.max_chat_id == MaxChat.id)
    query = visible_chats_query(user).where(
        MaxChat.status != "removed",
        sa.or_(~serves_any, MaxChat.org_id.in_(ancestors or [-1])))
    text = (text or "").strip()
    if text:
        cond = title_contains(text)
        if text.lstrip("-").isdigit() and len(text) < 19:
            cond = sa.or_(cond, MaxChat.chat_id == int(text))
        query = query.where(cond)
    return list(get_session().exec(query.order_by(MaxChat.title, MaxChat.id).limit(limit)).all())

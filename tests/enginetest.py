"""Helpers for the engine tests: a sandbox world (users, a chat with the bot as admin), the
matching app rows, and a wave with every date in the past."""

from __future__ import annotations

from datetime import timedelta

from migrator.db import get_session, utcnow
from migrator.engine.models import Step
from migrator.max.client import MaxClient
from migrator.max.models import MaxChat
from migrator.sandbox import ServerHandle
from migrator.sandbox.client import SandboxControl
from migrator.sandbox.state import SandboxState
from migrator.waves import service

PERMS = ["read_all_messages", "add_remove_members", "pin_message"]
# The shared sandbox's bot (tests/conftest.py: ``sandbox_server``), as the app's test settings.
SANDBOX_TOKEN = "test-bot-token-secret"  # noqa: S105 - a test token, checked for leaks
SANDBOX_BOT = "migrator_test_bot"


class SandboxCtl(SandboxControl):
    """The control client of a sandbox run in this process (``handle``), with the tests'
    shortcuts: its in-memory ``state`` and clients of its bot API (``token``)."""

    ctl = SandboxControl.call

    def __init__(self, handle: ServerHandle, token: str = SANDBOX_TOKEN) -> None:
        super().__init__(handle.url)
        self.handle = handle
        self.state: SandboxState = handle.app.extensions["max_sandbox"]
        self.token = token
        self._clients: list[MaxClient] = []

    def close(self) -> None:
        for client in self._clients:
            client.close()
        super().close()

    def client(self, *, token: str | None = None, **kwargs) -> MaxClient:
        """A client of the bot API as the bot (``token`` unless given) that does not sleep
        between retries; closed with this control client."""
        kwargs.setdefault("sleep", lambda s: None)
        client = MaxClient(self.url, self.token if token is None else token, **kwargs)
        self._clients.append(client)
        return client

    def user(self, name: str = "Иван", **fields) -> int:
        """A new user (``fields``: ``last_name``, ``username``, ``user_id``, ``allow_add``)."""
        return self.create_user(name, **fields)["user_id"]

    def started_user(self, name: str = "Иван", payload: str | None = "p") -> int:
        """A new user who pressed Start in the bot's dialog."""
        uid = self.user(name)
        self.start(uid, payload)
        return uid

    def chat_with_bot(self, title: str = "Чат", perms=None, **bot) -> int:
        """A chat of a new owner, the bot added by them with ``perms`` (default ``PERMS``;
        ``bot``: e.g. ``is_admin``)."""
        owner = self.user("Владелец")
        chat = self.create_chat(title, owner)
        self.add_bot(chat["chat_id"], PERMS if perms is None else perms, by_user_id=owner, **bot)
        return chat["chat_id"]

    def members(self, chat_id: int) -> list[int]:
        return [m["user_id"] for m in self.chat(chat_id)["members"]]

    def requests(self, method: str | None = None, contains: str = "") -> list[dict]:
        return [r for r in self.request_log()
                if (method is None or r["method"] == method) and contains in r["path"]]

    def add_calls(self, chat_id: int) -> int:
        return len([r for r in self.requests("POST", f"/chats/{chat_id}/members")
                    if r["status"] == 200])


def linked_chat_row(chat_id: int, org, title: str = "Чат") -> MaxChat:
    session = get_session()
    chat = MaxChat(chat_id=chat_id, title=title, status="linked", org_id=org.id,
                   bot_is_admin=True, bot_permissions=",".join(PERMS), added_at=utcnow(),
                   checked_at=utcnow())
    session.add(chat)
    session.commit()
    return chat


def link(group, chat: MaxChat) -> None:
    session = get_session()
    group.max_chat_id = chat.id
    group.linked_at = utcnow()
    session.add(group)
    session.commit()


def past_wave(groups, user, name: str = "Волна 1", *, start_hours: float = 2, **overrides):
    """A wave whose every step is due (dates in the past, in order)."""
    now = utcnow()
    start = now - timedelta(hours=start_hours)
    dates = {
        "invite_at": start,
        "add_members_at": start + timedelta(minutes=10),
        "announce_at": start + timedelta(minutes=20),
        "cutover_at": start + timedelta(minutes=30),
        "deadline": now + timedelta(days=1),
    }
    dates.update(overrides)
    wave = service.create_wave(name, [g.key for g in groups], **dates, user=user)
    get_session().commit()
    return wave


def step(group, kind: str) -> Step:
    session = get_session()
    session.expire_all()
    return session.exec(
        __import__("sqlmodel").select(Step).where(Step.group_id == group.id,
                                                  Step.kind == kind)).one()


def set_status(group, kind: str, status: str) -> None:
    s = step(group, kind)
    s.status = status
    get_session().add(s)
    get_session().commit()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def runner_env(app, **extra) -> dict:
    """Environment for a ``flask run-due`` subprocess on the test's database and sandbox."""
    import os

    env = dict(os.environ)
    cfg = app.config
    env.update({
        "DATABASE_URL": cfg["DATABASE_URL"], "MAX_API_URL": cfg["MAX_API_URL"],
        "MAX_BOT_TOKEN": cfg["MAX_BOT_TOKEN"], "MAX_BOT_USERNAME": cfg["MAX_BOT_USERNAME"],
        "MAX_WEBHOOK_SECRET": cfg["MAX_WEBHOOK_SECRET"], "SMTP_HOST": cfg["SMTP_HOST"],
        "SMTP_PORT": str(cfg["SMTP_PORT"]), "SECRET_KEY": cfg["SECRET_KEY"],
        "MIGRATOR_BASE_URL": cfg["MIGRATOR_BASE_URL"], "RUNNER_BACKOFF_SECONDS": "0",
        "MIGRATOR_ENV": "development",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_runner(app, *args: str, output=None, **extra):
    """``flask run-due *args`` in a subprocess; its output goes to a pipe, or to the open file
    ``output`` (a ``--loop`` runner would fill the pipe and block)."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run-due", *args],
        cwd=ROOT, env=runner_env(app, **extra), stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


# --- reading members and attention items afresh; delivering updates as Max would ---------


def member(group, emp):
    """The membership row of ``emp`` in ``group``, read afresh."""
    from migrator.groups.models import GroupMember

    session = get_session()
    session.expire_all()
    return session.get(GroupMember, (group.id, emp.id))


def open_items(code: str) -> list:
    """The open attention items with reason ``code``, read afresh."""
    import sqlalchemy as sa

    from migrator.attention.models import AttentionItem

    session = get_session()
    session.expire_all()
    return list(session.scalars(sa.select(AttentionItem).where(
        AttentionItem.code == code, AttentionItem.resolved_at.is_(None))))


def deliver(update: dict) -> None:
    """An update as the webhook or polling takes it in (the real intake), committed."""
    from migrator.max import updates

    updates.intake(update)
    get_session().commit()


def user_update(kind: str, user_id: int, ts: int, chat_id: int | None = None) -> dict:
    """A ``user_added``/``user_removed`` in ``chat_id``, or a dialog update (``bot_started``,
    ``bot_stopped``) when no chat is given, shaped as the schema's Update."""
    update = {"update_type": kind, "timestamp": ts,
              "user": {"user_id": user_id, "first_name": "Анна", "is_bot": False,
                       "last_activity_time": ts}}
    if chat_id is not None:
        update.update({"chat_id": chat_id, "is_channel": False,
                       ("admin_id" if kind == "user_removed" else "inviter_id"): 501})
    else:
        update.update({"chat_id": 10_000_000_000 + user_id})
    return update


class Killed(BaseException):
    """The runner dies (SIGKILL) right after Max carried out a call."""


def dying_on_remove(factory):
    """A client factory whose clients die (:class:`Killed`) right after each member removal
    Max carried out: the outcome of the call is never recorded."""

    def make():
        client = factory()
        remove = client.remove_member

        def remove_then_die(chat, user_id, **kw):
            remove(chat, user_id, **kw)
            raise Killed()

        client.remove_member = remove_then_die
        return client

    return make


def wait_for(ctx, check, what: str, timeout: float = 10.0):
    """Poll the database; every read transaction ends at once (on SQLite it would hold the
    write lock the live server needs for the webhook). Commit, not rollback: a rollback
    expires the test's objects, and reading one later would open a transaction again."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        ctx.commit()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)

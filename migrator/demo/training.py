"""The training sandbox in the browser (development and demo only): what the page shows of
the Max sandbox, and the people's and chat owners' actions it performs there through the
sandbox's control surface (:class:`migrator.sandbox.client.SandboxControl`).

The app learns of every action as it would from Max: through the updates the sandbox
delivers to the webhook (``bot_added``, ``bot_started``...), never from this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from flask import current_app

from migrator.auth.service import scoped
from migrator.db import get_session
from migrator.demo.actors import token_from_text
from migrator.mail.models import OutboxMessage
from migrator.people.models import Employee
from migrator.sandbox.client import SandboxControl, SandboxControlError

# The bot's rights a chat owner can grant in Max (the sandbox knows these four).
BOT_RIGHTS = ("read_all_messages", "add_remove_members", "pin_message", "write")
INVITATION_LIMIT = 300  # invitations offered in the "press Start" form

Unreachable = (SandboxControlError, httpx.HTTPError)


def available(config) -> bool:
    """The training sandbox is for development and demos, never production."""
    return config["ENV"] != "production"


def control() -> SandboxControl:
    """A client of the sandbox the app talks to as Max (``MAX_API_URL``)."""
    return SandboxControl(current_app.config["MAX_API_URL"], timeout=5)


@dataclass
class World:
    """What the sandbox holds: chats (with the bot's state) and people."""

    chats: list[dict]
    users: list[dict]
    bot_id: int

    def bot_in(self, chat: dict) -> dict | None:
        return next((m for m in chat["members"] if m["user_id"] == self.bot_id), None)

    def user_name(self, user_id: int) -> str:
        user = next((u for u in self.users if u["user_id"] == user_id), None)
        return full_name(user) if user else str(user_id)


def full_name(user: dict) -> str:
    return " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)


def world(sandbox: SandboxControl) -> World:
    """The sandbox's chats and people (raises :data:`Unreachable` errors)."""
    bot = sandbox.bot()
    users = sorted(sandbox.users(), key=lambda u: (full_name(u).casefold(), u["user_id"]))
    chats = sorted(sandbox.chats(), key=lambda c: ((c.get("title") or "").casefold(),
                                                   c["chat_id"]))
    return World(chats=chats, users=users, bot_id=bot["user_id"])


@dataclass
class Invitation:
    employee_id: int
    name: str
    email: str
    token: str


def invitations(user, employee_id: int | None = None) -> list[Invitation]:
    """Invitations sent to people of ``user``'s scope who have not pressed Start yet, the
    newest e-mail per person (or only ``employee_id``'s)."""
    q = (sa.select(Employee.id, Employee.full_name, Employee.email, OutboxMessage.body_text)
         .join(OutboxMessage, OutboxMessage.to_addr == Employee.email)
         .where(OutboxMessage.kind.in_(("invite", "reminder")),
                OutboxMessage.status == "sent", Employee.max_user_id.is_(None))
         .order_by(OutboxMessage.id.desc()))
    if employee_id is not None:
        q = q.where(Employee.id == employee_id)
    rows = get_session().execute(scoped(q, Employee.org_id, user).limit(INVITATION_LIMIT * 3))
    out: dict[int, Invitation] = {}
    for emp_id, name, email, body in rows:
        token = token_from_text(body)
        if token and emp_id not in out:
            out[emp_id] = Invitation(emp_id, name, email, token)
    return sorted(out.values(), key=lambda i: i.name.casefold())[:INVITATION_LIMIT]


def press_start(sandbox: SandboxControl, user_id: int | None, invitation: Invitation | None,
                link: str | None) -> int:
    """The person ``user_id`` (a new one named after the invited employee when None) presses
    Start: with the invitation's token, the pasted deep link, or none. Returns their id."""
    if user_id is None:
        first, _, last = (invitation.name if invitation else "Сотрудник").partition(" ")
        user_id = sandbox.create_user(first, last or None)["user_id"]
    if invitation is not None:
        sandbox.start(user_id, invitation.token)
    elif link:
        sandbox.open_deeplink(user_id, link)
    else:
        sandbox.start(user_id)
    return user_id

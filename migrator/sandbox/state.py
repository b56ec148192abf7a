"""In-memory world of the Max sandbox: users, chats, the bot, updates, faults and logs.

All mutation happens under one re-entrant lock; API and control views call the methods
here. Objects are rendered to the exact JSON shapes of the Max Bot API schema (0.0.32).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

ALL_BOT_PERMISSIONS = ("read_all_messages", "add_remove_members", "pin_message", "write")
ADMIN_PERMISSIONS = frozenset(
    {
        "read_all_messages",
        "add_remove_members",
        "add_admins",
        "change_chat_info",
        "pin_message",
        "write",
        "can_call",
        "edit_link",
        "post_edit_delete_message",
        "edit_message",
        "delete_message",
        "edit",
        "delete",
    }
)
BOT_USER_ID = 100_000  # the sandbox bot's own user_id
DIALOG_ID_BASE = 10_000_000_000  # dialog chat_id = base + user_id (positive, unlike chats)
FAULT_KINDS = (
    "fail_503", "fail_429", "slow", "duplicate_delivery", "reorder_delivery", "not_found",
    "soft_fail", "drop_answer",
)
EIGHT_HOURS = 8 * 3600.0  # Max drops a webhook that failed every delivery for this long


def now_ms() -> int:
    return int(time.time() * 1000)


class SandboxError(Exception):
    """An API error: rendered as ``{"code", "message"}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class User:
    user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    is_bot: bool = False
    allow_add: bool = True  # False: privacy settings forbid adding them to chats
    bot_started: bool = False  # pressed Start in the bot's dialog (and not stopped)
    last_activity_time: int = field(default_factory=now_ms)

    def to_api(self) -> JSON:
        """The ``User`` schema object."""
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return {
            "user_id": self.user_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "is_bot": self.is_bot,
            "last_activity_time": self.last_activity_time,
            "name": full,
        }


@dataclass
class Member:
    user_id: int
    is_owner: bool = False
    is_admin: bool = False
    permissions: list[str] | None = None
    join_time: int = field(default_factory=now_ms)


@dataclass
class Chat:
    chat_id: int
    title: str
    owner_id: int
    members: dict[int, Member] = field(default_factory=dict)
    messages: list[JSON] = field(default_factory=list)
    pinned_mid: str | None = None
    description: str | None = None
    bot_status: str | None = None  # None: never added; "active", "removed" or "left"
    link: str | None = None  # the chat's join link (https://max.ru/join/...), if it has one
    last_event_time: int = field(default_factory=now_ms)


@dataclass
class FaultRule:
    """Fires on the next ``next`` occasions, otherwise with ``probability``."""

    next: int = 0
    probability: float = 0.0
    # Only requests with this method and path count (``not_found``: a method the platform
    # lacks); None matches every request.
    method: str | None = None
    path: str | None = None

    def applies(self, method: str | None, path: str | None) -> bool:
        return (self.path is None or self.path == path) and (
            self.method is None or self.method == method)

    def fire(self, rng: random.Random) -> bool:
        if self.next > 0:
            self.next -= 1
            return True
        return self.probability > 0 and rng.random() < self.probability

    def to_json(self) -> JSON:
        out: JSON = {"next": self.next, "probability": self.probability}
        if self.method is not None or self.path is not None:
            out.update(method=self.method, path=self.path)
        return out


@dataclass
class Subscription:
    url: str
    secret: str | None
    update_types: list[str] | None
    time: int = field(default_factory=now_ms)
    # time.monotonic() of the first failed delivery since the last successful one
    failing_since: float | None = None

    def wants(self, update_type: str) -> bool:
        return not self.update_types or update_type in self.update_types

    def to_api(self) -> JSON:
        return {"url": self.url, "time": self.time, "update_types": self.update_types}


class SandboxState:
    """The whole sandbox world; thread-safe."""

    def __init__(
        self,
        *,
        bot_username: str = "migrator_bot",
        seed: int | None = 0,
        webhook_retry_base: float = 0.5,
        webhook_retry_factor: float = 2.5,
        webhook_retry_cap: float = 30.0,
        webhook_give_up_after: float = 300.0,
        webhook_unsubscribe_after: float = EIGHT_HOURS,
        dev_webhooks: bool = False,
        request_log_size: int = 200_000,
    ) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every new update
        self.bot_username = bot_username
        self.webhook_retry_base = webhook_retry_base
        self.webhook_retry_factor = webhook_retry_factor
        self.webhook_retry_cap = webhook_retry_cap
        self.webhook_give_up_after = webhook_give_up_after
        self.webhook_unsubscribe_after = webhook_unsubscribe_after
        # Development flag: also accept http:// and any port on a loopback host
        self.dev_webhooks = dev_webhooks
        self.request_log: deque[JSON] = deque(maxlen=request_log_size)
        self.delivery_log: deque[JSON] = deque(maxlen=request_log_size)
        self.delivery = None  # the webhook deliverer, set by the app factory
        self.reset(seed=seed)

    # -- setup -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = 0) -> None:
        with self.lock:
            self.rng = random.Random(seed)
            self.bot = User(
                user_id=BOT_USER_ID,
                first_name="Migrator",
                username=self.bot_username,
                is_bot=True,
            )
            self.users: dict[int, User] = {}
            self.chats: dict[int, Chat] = {}
            self.dialogs: dict[int, list[JSON]] = {}  # user_id -> bot's dialog messages
            self.subscriptions: dict[str, Subscription] = {}
            self.updates: list[JSON] = []  # every update ever emitted (inspection)
            self.poll_queue: list[tuple[int, JSON]] = []  # (seq, update) for GET /updates
            self.poll_ack = 1  # updates with seq below this count as read
            self.faults: dict[str, FaultRule] = {k: FaultRule() for k in FAULT_KINDS}
            self.slow_ms = 0
            self.retry_after: float | None = 1.0  # Retry-After on injected 429s
            self.reorder_hold_ms = 400
            self._seq = itertools.count(1)
            self._user_ids = itertools.count(1001)
            self._chat_ids = itertools.count(-70_000_000_001, -1)
            self._mids = itertools.count(1)
            self.request_log.clear()
            self.delivery_log.clear()
            self.changed.notify_all()

    def set_faults(self, spec: JSON) -> JSON:
        """Apply a fault specification (see the package docstring); return the current one."""
        with self.lock:
            if "seed" in spec:
                self.rng = random.Random(spec["seed"])
            for kind in FAULT_KINDS:
                if kind in spec:
                    rule = spec[kind] or {}
                    self.faults[kind] = FaultRule(
                        next=int(rule.get("next", 0)),
                        probability=float(rule.get("probability", 0.0)),
                        method=str(rule["method"]).upper() if rule.get("method") else None,
                        path=str(rule["path"]) if rule.get("path") else None,
                    )
                    if kind == "slow" and "ms" in rule:
                        self.slow_ms = int(rule["ms"])
                    if kind == "fail_429" and "retry_after" in rule:
                        ra = rule["retry_after"]
                        self.retry_after = None if ra is None else float(ra)
                    if kind == "reorder_delivery" and "hold_ms" in rule:
                        self.reorder_hold_ms = int(rule["hold_ms"])
            return self.faults_json()

    def faults_json(self) -> JSON:
        with self.lock:
            out: JSON = {k: r.to_json() for k, r in self.faults.items()}
            out["slow"]["ms"] = self.slow_ms
            out["fail_429"]["retry_after"] = self.retry_after
            out["reorder_delivery"]["hold_ms"] = self.reorder_hold_ms
            return out

    def fire(self, kind: str, method: str | None = None, path: str | None = None) -> bool:
        with self.lock:
            rule = self.faults[kind]
            return rule.applies(method, path) and rule.fire(self.rng)

    # -- users and chats ---------------------------------------------------------------

    def create_user(
        self,
        *,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        user_id: int | None = None,
        allow_add: bool = True,
    ) -> User:
        with self.lock:
            uid = int(user_id) if user_id is not None else next(self._user_ids)
            while user_id is None and uid in self.users:
                uid = next(self._user_ids)
            if uid in self.users or uid == BOT_USER_ID:
                raise SandboxError(409, "user.exists", f"user {uid} already exists")
            user = User(uid, first_name, last_name, username, allow_add=allow_add)
            self.users[uid] = user
            return user

    def user(self, user_id: int) -> User:
        u = self.users.get(int(user_id))
        if u is None:
            raise SandboxError(404, "not.found", f"user {user_id} not found")
        return u

    def any_user(self, user_id: int) -> User:
        if int(user_id) == BOT_USER_ID:
            return self.bot
        return self.user(user_id)

    def create_chat(
        self,
        *,
        title: str,
        owner_id: int,
        chat_id: int | None = None,
        member_ids: list[int] | None = None,
        link: str | None = None,
    ) -> Chat:
        with self.lock:
            self.user(owner_id)
            cid = int(chat_id) if chat_id is not None else next(self._chat_ids)
            if cid in self.chats:
                raise SandboxError(409, "chat.exists", f"chat {cid} already exists")
            chat = Chat(chat_id=cid, title=title, owner_id=int(owner_id), link=link)
            chat.members[int(owner_id)] = Member(
                int(owner_id), is_owner=True, is_admin=True, permissions=sorted(ADMIN_PERMISSIONS)
            )
            for uid in member_ids or ():
                self.user(uid)
                chat.members.setdefault(int(uid), Member(int(uid)))
            self.chats[cid] = chat
            return chat

    def chat(self, chat_id: int) -> Chat:
        c = self.chats.get(int(chat_id))
        if c is None:
            raise SandboxError(404, "not.found", f"chat {chat_id} not found")
        return c

    def bot_chat(self, chat_id: int, *, permission: str | None = None, admin: bool = False) -> Chat:
        """The chat, if the bot is in it (and holds ``permission`` / is admin), else 403/404."""
        chat = self.chat(chat_id)
        me = chat.members.get(BOT_USER_ID)
        if chat.bot_status != "active" or me is None:
            raise SandboxError(403, "chat.denied", f"bot is not a member of chat {chat_id}")
        if (admin or permission) and not me.is_admin:
            raise SandboxError(403, "chat.denied", f"bot is not an admin of chat {chat_id}")
        if permission and permission not in (me.permissions or ()):
            raise SandboxError(
                403, "chat.denied", f"bot lacks the {permission!r} permission in chat {chat_id}"
            )
        return chat

    # -- events from the "outside world" (control surface) ------------------------------

    def add_bot(
        self,
        chat_id: int,
        *,
        by_user_id: int | None = None,
        permissions: list[str] | None = None,
        is_admin: bool = True,
    ) -> JSON:
        with self.lock:
            chat = self.chat(chat_id)
            actor = self.user(by_user_id if by_user_id is not None else chat.owner_id)
            perms = list(ALL_BOT_PERMISSIONS if permissions is None else permissions)
            unknown = set(perms) - ADMIN_PERMISSIONS
            if unknown:
                raise SandboxError(400, "proto.payload", f"unknown permissions {sorted(unknown)}")
            chat.members[BOT_USER_ID] = Member(
                BOT_USER_ID, is_admin=is_admin, permissions=perms if is_admin else None
            )
            chat.bot_status = "active"
            return self.emit(
                "bot_added",
                chat_id=chat.chat_id,
                user=actor.to_api(),
                is_channel=False,
                chat=chat,
            )

    def set_bot_rights(
        self, chat_id: int, *, permissions: list[str] | None, is_admin: bool = True
    ) -> JSON:
        """Promote or demote the bot in a chat it is in. Max sends no update for this."""
        with self.lock:
            chat = self.chat(chat_id)
            me = chat.members.get(BOT_USER_ID)
            if chat.bot_status != "active" or me is None:
                raise SandboxError(409, "bot.not.member", "the bot is not in this chat")
            perms = list(permissions or ())
            unknown = set(perms) - ADMIN_PERMISSIONS
            if unknown:
                raise SandboxError(400, "proto.payload", f"unknown permissions {sorted(unknown)}")
            me.is_admin = is_admin
            me.permissions = perms if is_admin else None
            return self.member_to_api(me)

    def set_link(self, chat_id: int, link: str | None) -> Chat:
        """The owner creates, changes or removes the chat's join link. Max sends no update."""
        if link is not None and not (isinstance(link, str) and link.startswith("https://")):
            raise SandboxError(400, "proto.payload", "link must be an https:// URL or null")
        with self.lock:
            chat = self.chat(chat_id)
            chat.link = link
            return chat

    def remove_bot(self, chat_id: int, *, by_user_id: int | None = None) -> JSON:
        with self.lock:
            chat = self.chat(chat_id)
            actor = self.user(by_user_id if by_user_id is not None else chat.owner_id)
            if chat.bot_status != "active":
                raise SandboxError(409, "bot.not.member", "the bot is not in this chat")
            chat.members.pop(BOT_USER_ID, None)
            chat.bot_status = "removed"
            return self.emit(
                "bot_removed",
                chat_id=chat.chat_id,
                user=actor.to_api(),
                is_channel=False,
                chat=chat,
            )

    def change_title(self, chat_id: int, title: str, *, by_user_id: int | None = None) -> JSON:
        with self.lock:
            chat = self.chat(chat_id)
            actor = self.any_user(by_user_id if by_user_id is not None else chat.owner_id)
            if not 1 <= len(title) <= 200:
                raise SandboxError(400, "proto.payload", "title must have 1..200 characters")
            chat.title = title
            return self.emit(
                "chat_title_changed",
                chat_id=chat.chat_id,
                user=actor.to_api(),
                title=title,
                chat=chat,
            )

    def user_joins(
        self, chat_id: int, user_id: int, *, inviter_id: int | None = None
    ) -> JSON | None:
        with self.lock:
            chat = self.chat(chat_id)
            user = self.user(user_id)
            if user.user_id in chat.members:
                return None
            chat.members[user.user_id] = Member(user.user_id)
            return self.emit(
                "user_added",
                chat_id=chat.chat_id,
                user=user.to_api(),
                inviter_id=inviter_id,
                is_channel=False,
                chat=chat,
            )

    def user_leaves(
        self, chat_id: int, user_id: int, *, admin_id: int | None = None
    ) -> JSON | None:
        with self.lock:
            chat = self.chat(chat_id)
            user = self.user(user_id)
            if user.user_id not in chat.members:
                return None
            if chat.members[user.user_id].is_owner:
                raise SandboxError(403, "chat.denied", "the owner cannot leave or be removed")
            del chat.members[user.user_id]
            fields: JSON = {"chat_id": chat.chat_id, "user": user.to_api(), "is_channel": False}
            if admin_id is not None:
                fields["admin_id"] = admin_id
            return self.emit("user_removed", chat=chat, **fields)

    def user_starts(self, user_id: int, payload: str | None) -> JSON:
        with self.lock:
            user = self.user(user_id)
            if payload is not None and len(payload) > 512:
                raise SandboxError(400, "proto.payload", "payload longer than 512 characters")
            user.bot_started = True
            self.dialogs.setdefault(user.user_id, [])
            return self.emit(
                "bot_started",
                chat_id=DIALOG_ID_BASE + user.user_id,
                user=user.to_api(),
                payload=payload,
                user_locale="ru",
            )

    def user_stops(self, user_id: int) -> JSON:
        with self.lock:
            user = self.user(user_id)
            user.bot_started = False
            return self.emit(
                "bot_stopped",
                chat_id=DIALOG_ID_BASE + user.user_id,
                user=user.to_api(),
                user_locale="ru",
            )

    def user_writes_to_bot(self, user_id: int, text: str) -> JSON:
        """The user writes to the bot in their dialog -> ``message_created``."""
        with self.lock:
            user = self.user(user_id)
            message = self.new_message(user, text, user_id=user.user_id)
            self.dialogs.setdefault(user.user_id, []).append(message)
            return self.emit("message_created", message=message, user_locale="ru")

    def user_writes(self, chat_id: int, user_id: int, text: str) -> JSON:
        with self.lock:
            chat = self.chat(chat_id)
            user = self.user(user_id)
            if user.user_id not in chat.members:
                raise SandboxError(403, "chat.denied", "the user is not a member of the chat")
            message = self.new_message(user, text, chat_id=chat.chat_id)
            chat.messages.append(message)
            return self.emit("message_created", message=message, chat=chat)

    # -- messages ----------------------------------------------------------------------

    def new_message(
        self,
        sender: User,
        text: str | None,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> JSON:
        """A ``Message`` schema object (ChatType has only ``chat`` in the 0.0.32 schema)."""
        n = next(self._mids)
        return {
            "sender": sender.to_api(),
            "recipient": {
                "chat_id": chat_id if chat_id is not None else DIALOG_ID_BASE + (user_id or 0),
                "chat_type": "chat",
                "user_id": user_id,
            },
            "timestamp": now_ms(),
            "link": None,
            "body": {
                "mid": f"mid.{n:016x}",
                "seq": n,
                "text": text,
                "attachments": [],
                "link": None,
                "markup": None,
            },
            "url": None,
        }

    # -- rendering ---------------------------------------------------------------------

    def chat_to_api(self, chat: Chat) -> JSON:
        pinned = self.find_message(chat, chat.pinned_mid) if chat.pinned_mid else None
        return {
            "chat_id": chat.chat_id,
            "type": "chat",
            "status": chat.bot_status or "removed",
            "title": chat.title,
            "icon": None,
            "last_event_time": chat.last_event_time,
            "participants_count": len(chat.members),
            "owner_id": chat.owner_id,
            "participants": None,
            "is_public": False,
            "link": chat.link,
            "description": chat.description,
            "dialog_with_user": None,
            "messages_count": len(chat.messages),
            "pinned_message": pinned,
        }

    def member_to_api(self, member: Member) -> JSON:
        user = self.any_user(member.user_id)
        data = user.to_api()
        data.update(
            {
                "description": None,
                "last_access_time": member.join_time,
                "is_owner": member.is_owner,
                "is_admin": member.is_admin,
                "join_time": member.join_time,
                "permissions": list(member.permissions) if member.is_admin else None,
            }
        )
        return data

    def list_messages(
        self,
        *,
        chat_id: int | None = None,
        message_ids: list[str] | None = None,
        from_: int | None = None,
        to: int | None = None,
        count: int = 50,
    ) -> list[JSON]:
        """``GET /messages``: a chat's messages newest first, or the messages with the given
        ids among the chats and dialogs the bot is in. ``from_``/``to`` bound the
        ``timestamp`` (ms, like ``Message.timestamp``): at most ``from_``, at least ``to``."""
        with self.lock:
            if chat_id is not None:
                if chat_id >= DIALOG_ID_BASE:
                    pool = list(self.dialogs.get(chat_id - DIALOG_ID_BASE, []))
                else:
                    pool = list(self.bot_chat(chat_id).messages)
            else:
                pool = [m for c in self.chats.values() if c.bot_status == "active"
                        and BOT_USER_ID in c.members for m in c.messages]
                pool += [m for msgs in self.dialogs.values() for m in msgs]
            if message_ids is not None:
                wanted = set(message_ids)
                pool = [m for m in pool if m["body"]["mid"] in wanted]
            if from_ is not None:
                pool = [m for m in pool if m["timestamp"] <= from_]
            if to is not None:
                pool = [m for m in pool if m["timestamp"] >= to]
            pool.sort(key=lambda m: (m["timestamp"], m["body"]["seq"]), reverse=True)
            return pool[:count]

    @staticmethod
    def find_message(chat: Chat, mid: str | None) -> JSON | None:
        for m in chat.messages:
            if m["body"]["mid"] == mid:
                return m
        return None

    # -- updates -----------------------------------------------------------------------

    def emit(self, update_type: str, *, chat: Chat | None = None, **fields: Any) -> JSON:
        """Record an update; queue it for long polling or hand it to the webhook deliverer."""
        with self.lock:
            update = {"update_type": update_type, "timestamp": now_ms(), **fields}
            if chat is not None:
                chat.last_event_time = update["timestamp"]
            self.updates.append(update)
            subs = [s for s in self.subscriptions.values() if s.wants(update_type)]
            if self.subscriptions:
                if self.delivery is not None:
                    for sub in subs:
                        self.delivery.enqueue(sub, update)
            else:
                self.poll_queue.append((next(self._seq), update))
            self.changed.notify_all()
            return update

    def poll(
        self, *, marker: int | None, limit: int, timeout: float, types: set[str] | None
    ) -> JSON:
        """``GET /updates``: the updates from ``marker`` on; without a marker, as the schema
        says, only the last update (every earlier unread one is lost)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            if marker is not None:
                self.poll_ack = max(self.poll_ack, marker)
            while True:
                start = self.poll_ack
                waiting = [(seq, u) for seq, u in self.poll_queue if seq >= start]
                if marker is None and waiting:
                    waiting = waiting[-1:]
                batch: list[JSON] = []
                next_marker = start
                for seq, update in waiting:
                    if len(batch) >= limit:
                        break
                    next_marker = seq + 1
                    if types is None or update["update_type"] in types:
                        batch.append(update)
                if batch or time.monotonic() >= deadline:
                    # everything before next_marker is consumed (including filtered-out types)
                    self.poll_ack = next_marker
                    self.poll_queue = [(s, u) for s, u in self.poll_queue if s >= next_marker]
                    return {"updates": batch, "marker": next_marker}
                self.changed.wait(max(0.0, deadline - time.monotonic()))

"""The one client of the sandbox's control surface (``/_sandbox/``), for the demo and tests.

Each method is one control request (see :mod:`migrator.sandbox` for the surface); an
answer of 400 or more raises :class:`SandboxControlError`.
"""

from __future__ import annotations

from typing import Any

import httpx


class SandboxControlError(RuntimeError):
    """The sandbox refused a control request (or answered with an error)."""

    def __init__(self, method: str, path: str, status: int, text: str):
        super().__init__(f"sandbox {method} {path}: {status} {text[:200]}")
        self.status = status


class SandboxControl:
    """The control surface of the sandbox at ``url`` (its root, e.g. ``MAX_API_URL``)."""

    def __init__(self, url: str, *, timeout: float = 10, http: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self._own = http is None
        self.http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """One control request; ``path`` is relative to ``/_sandbox`` (e.g. ``/users``)."""
        resp = self.http.request(method, f"{self.url}/_sandbox{path}", json=json,
                                 params=params or None)
        if resp.status_code >= 400:
            raise SandboxControlError(method, path, resp.status_code, resp.text)
        return resp.json()

    # --- the whole sandbox --------------------------------------------------------------------

    def reset(self, seed: int = 0) -> None:
        """Forget every user, chat, update, log entry, subscription and fault."""
        self.call("POST", "/reset", {"seed": seed})

    def bot(self) -> dict:
        return self.call("GET", "/bot")

    def faults(self, **spec: Any) -> dict:
        """Set fault rules (see the surface's documentation); returns the settings."""
        return self.call("POST", "/faults", spec)

    def request_log(self, since: float | None = None) -> list[dict]:
        params = {} if since is None else {"since": since}
        return self.call("GET", "/requests", **params)["requests"]

    def clear_request_log(self) -> None:
        self.call("DELETE", "/requests")

    def delivery_log(self, since: float | None = None) -> dict:
        """``{"deliveries": [...], "pending": n}``."""
        params = {} if since is None else {"since": since}
        return self.call("GET", "/deliveries", **params)

    def updates(self) -> list[dict]:
        return self.call("GET", "/updates")["updates"]

    def webhooks(self) -> dict:
        """The webhook settings (``retry_base``, ..., ``dev_webhooks``) and ``subscriptions``."""
        return self.call("GET", "/webhooks")

    def set_webhooks(self, **settings: float) -> dict:
        """Compress webhook time: any of ``retry_base``, ``retry_factor``, ``retry_cap``,
        ``give_up_after``, ``unsubscribe_after`` (seconds); returns :meth:`webhooks`."""
        return self.call("POST", "/webhooks", settings)

    # --- users ----------------------------------------------------------------------------------

    def users(self) -> list[dict]:
        return self.call("GET", "/users")["users"]

    def create_user(self, first_name: str, last_name: str | None = None, **fields: Any) -> dict:
        return self.call("POST", "/users",
                         {"first_name": first_name, "last_name": last_name, **fields})

    def get_user(self, user_id: int) -> dict:
        return self.call("GET", f"/users/{user_id}")

    def update_user(self, user_id: int, **fields: Any) -> dict:
        return self.call("PATCH", f"/users/{user_id}", fields)

    def start(self, user_id: int, payload: str | None = None) -> dict:
        """The user presses Start in the bot's dialog (``bot_started``)."""
        return self.call("POST", f"/users/{user_id}/start", {"payload": payload})

    def stop(self, user_id: int) -> dict:
        return self.call("POST", f"/users/{user_id}/stop")

    def write_to_bot(self, user_id: int, text: str) -> dict:
        """The user writes ``text`` to the bot in their dialog (``message_created``)."""
        return self.call("POST", f"/users/{user_id}/write", {"text": text})

    def user_messages(self, user_id: int) -> list[dict]:
        return self.call("GET", f"/users/{user_id}/messages")["messages"]

    def open_deeplink(self, user_id: int, url: str) -> dict:
        return self.call("POST", "/deeplink", {"user_id": user_id, "url": url})

    # --- chats ----------------------------------------------------------------------------------

    def chats(self) -> list[dict]:
        return self.call("GET", "/chats")["chats"]

    def create_chat(self, title: str, owner_id: int, **fields: Any) -> dict:
        """``fields``: ``chat_id``, ``member_ids``, ``link``."""
        return self.call("POST", "/chats", {"title": title, "owner_id": owner_id, **fields})

    def set_link(self, chat_id: int, link: str | None) -> dict:
        """The owner sets (or, with None, removes) the chat's join link; no update."""
        return self.call("PATCH", f"/chats/{chat_id}", {"link": link})

    def chat(self, chat_id: int) -> dict:
        return self.call("GET", f"/chats/{chat_id}")

    def add_bot(self, chat_id: int, permissions: list[str] | None = None, **body: Any) -> dict:
        """``body``: ``is_admin``, ``by_user_id``; returns the ``bot_added`` update."""
        if permissions is not None:
            body["permissions"] = list(permissions)
        return self.call("POST", f"/chats/{chat_id}/bot", body)

    def set_bot_rights(self, chat_id: int, permissions: list[str],
                       is_admin: bool = True) -> dict:
        """Promote or demote the bot in a chat it is in (Max sends no update for this)."""
        return self.call("PATCH", f"/chats/{chat_id}/bot",
                         {"permissions": list(permissions), "is_admin": is_admin})

    def remove_bot(self, chat_id: int, by_user_id: int | None = None) -> dict:
        body = {} if by_user_id is None else {"by_user_id": by_user_id}
        return self.call("DELETE", f"/chats/{chat_id}/bot", body)

    def change_title(self, chat_id: int, title: str, by_user_id: int | None = None) -> dict:
        body: dict[str, Any] = {"title": title}
        if by_user_id is not None:
            body["by_user_id"] = by_user_id
        return self.call("POST", f"/chats/{chat_id}/title", body)

    def join(self, chat_id: int, user_id: int, inviter_id: int | None = None) -> dict:
        body: dict[str, Any] = {"user_id": user_id}
        if inviter_id is not None:
            body["inviter_id"] = inviter_id
        return self.call("POST", f"/chats/{chat_id}/members", body)

    def leave(self, chat_id: int, user_id: int, admin_id: int | None = None) -> dict:
        body = {} if admin_id is None else {"admin_id": admin_id}
        return self.call("DELETE", f"/chats/{chat_id}/members/{user_id}", body)

    def write(self, chat_id: int, user_id: int, text: str) -> dict:
        return self.call("POST", f"/chats/{chat_id}/messages", {"user_id": user_id, "text": text})

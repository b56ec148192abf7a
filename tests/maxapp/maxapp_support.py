"""Helpers for the Max app-side tests: a sandbox handle and update builders."""

from __future__ import annotations

import time
from typing import Any

import httpx

from migrator.sandbox import create_sandbox_app, run_in_thread
from migrator.sandbox.state import SandboxState

TOKEN = "maxapp-test-token-7c1d0b9e"  # noqa: S105 - a test token, checked for leaks
SECRET = "maxapp-webhook-secret-42"  # noqa: S105


class Sandbox:
    """A running Max sandbox and shortcuts to its control surface."""

    def __init__(self) -> None:
        self.state = SandboxState(bot_username="migrator_test_bot",
                                  webhook_retry_base=0.2, webhook_retry_cap=1.0)
        self.handle = run_in_thread(create_sandbox_app(token=TOKEN, rps=None, state=self.state))
        self.url = self.handle.url
        self.http = httpx.Client(base_url=self.url + "/_sandbox", timeout=10)

    def ctl(self, method: str, path: str, json: Any = None) -> Any:
        r = self.http.request(method, path, json=json)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    def user(self, first_name: str = "Ivan", **fields: Any) -> dict:
        return self.ctl("POST", "/users", {"first_name": first_name, **fields})

    def chat(self, owner_id: int, title: str = "Школа №1 — учителя") -> int:
        return self.ctl("POST", "/chats", {"title": title, "owner_id": owner_id})["chat_id"]

    def add_bot(self, chat_id: int, permissions: list[str] | None = None, **body: Any) -> dict:
        if permissions is not None:
            body["permissions"] = permissions
        return self.ctl("POST", f"/chats/{chat_id}/bot", body)

    def close(self) -> None:
        self.http.close()
        self.handle.shutdown()


def wait_for(check, timeout: float = 5.0, interval: float = 0.05):
    """Call ``check()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# --- update JSON in the shapes of the official schema (openapi.yaml, Update subtypes) ---


def max_user(user_id: int, name: str = "Иван Петров") -> dict:
    first, _, last = name.partition(" ")
    return {"user_id": user_id, "first_name": first, "last_name": last or None,
            "username": None, "is_bot": False, "last_activity_time": 1_750_000_000_000,
            "name": name}


def bot_added(chat_id: int, ts: int, user_id: int = 501, name: str = "Иван Петров") -> dict:
    return {"update_type": "bot_added", "timestamp": ts, "chat_id": chat_id,
            "user": max_user(user_id, name), "is_channel": False}


def bot_removed(chat_id: int, ts: int, user_id: int = 501) -> dict:
    return {"update_type": "bot_removed", "timestamp": ts, "chat_id": chat_id,
            "user": max_user(user_id), "is_channel": False}


def title_changed(chat_id: int, ts: int, title: str, user_id: int = 501) -> dict:
    return {"update_type": "chat_title_changed", "timestamp": ts, "chat_id": chat_id,
            "user": max_user(user_id), "title": title}


def user_added(chat_id: int, ts: int, user_id: int, inviter_id: int = 501) -> dict:
    return {"update_type": "user_added", "timestamp": ts, "chat_id": chat_id,
            "user": max_user(user_id, "Мария Иванова"), "inviter_id": inviter_id,
            "is_channel": False}


def user_removed(chat_id: int, ts: int, user_id: int, admin_id: int = 501) -> dict:
    return {"update_type": "user_removed", "timestamp": ts, "chat_id": chat_id,
            "user": max_user(user_id, "Мария Иванова"), "admin_id": admin_id,
            "is_channel": False}


def bot_started(user_id: int, ts: int, payload: str | None) -> dict:
    return {"update_type": "bot_started", "timestamp": ts, "chat_id": 10_000_000_000 + user_id,
            "user": max_user(user_id), "payload": payload, "user_locale": "ru"}

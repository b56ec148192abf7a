"""Helpers for the Max app-side tests: waiting, and update builders."""

from __future__ import annotations

import time

from enginetest import SANDBOX_TOKEN as TOKEN

__all__ = ["SECRET", "TOKEN", "wait_for"]

SECRET = "maxapp-webhook-secret-42"  # noqa: S105


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

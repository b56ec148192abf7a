"""Helpers shared by the tests in tests/max (imported by conftest and test modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from migrator.max.client import MaxClient
from migrator.sandbox import ServerHandle
from migrator.sandbox.client import SandboxControl
from migrator.sandbox.state import SandboxState

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = REPO_ROOT / ".." / "shared" / "max-bot-api" / "openapi.yaml"
TOKEN = "sandbox-test-token-3f9a1c7e5b"  # noqa: S105 - a test token, checked for leaks


class RecordingTransport(httpx.BaseTransport):
    """Passes requests to a real HTTP transport and keeps every (request, response) pair."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response

    def close(self) -> None:
        self.inner.close()


class Sandbox:
    """A running sandbox and shortcuts to its control surface."""

    def __init__(self, handle: ServerHandle, state: SandboxState) -> None:
        self.handle = handle
        self.state = state
        self.url = handle.url
        self.control = SandboxControl(handle.url)
        self.clients: list[MaxClient] = []

    def ctl(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        return self.control.call(method, path, json, **params)

    def user(self, first_name: str = "Ivan", **fields: Any) -> dict:
        return self.ctl("POST", "/users", {"first_name": first_name, **fields})

    def chat(self, owner_id: int, title: str = "Школа №1 — учителя", **fields: Any) -> dict:
        return self.ctl("POST", "/chats", {"title": title, "owner_id": owner_id, **fields})

    def chat_with_bot(self, permissions: list[str] | None = None, **bot: Any) -> tuple[dict, int]:
        """A new owner, a chat they own and the bot added by them; (owner, chat_id)."""
        owner = self.user("Owner")
        chat_id = self.chat(owner["user_id"])["chat_id"]
        body = dict(bot)
        if permissions is not None:
            body["permissions"] = permissions
        self.ctl("POST", f"/chats/{chat_id}/bot", body)
        return owner, chat_id

    def started_user(self, first_name: str = "Started", payload: str = "p") -> int:
        """A new user who pressed Start in the bot's dialog; their user_id."""
        uid = self.user(first_name)["user_id"]
        self.ctl("POST", f"/users/{uid}/start", {"payload": payload})
        return uid

    def requests(self) -> list[dict]:
        return self.ctl("GET", "/requests")["requests"]

    def deliveries(self) -> list[dict]:
        return self.ctl("GET", "/deliveries")["deliveries"]

    def client(self, *, token: str = TOKEN, **kwargs: Any) -> MaxClient:
        kwargs.setdefault("sleep", lambda s: None)
        client = MaxClient(self.url, token, **kwargs)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.control.close()
        self.handle.shutdown()

"""Helpers shared by the tests in tests/max (imported by conftest and test modules)."""

from __future__ import annotations

from pathlib import Path

import httpx

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

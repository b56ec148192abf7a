"""Fixtures for the Max client, limiter and sandbox tests: sandbox servers on free ports,
clients that record their traffic, and the official OpenAPI schema."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from enginetest import SandboxCtl
from maxtest_support import OPENAPI_PATH, TOKEN

from migrator.sandbox import create_sandbox_app, run_in_thread
from migrator.sandbox.state import SandboxState


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxCtl]]:
    """Start sandboxes of their own (token ``TOKEN``; ``rps=None``: unlimited unless given;
    loopback webhooks allowed unless ``dev_webhooks=False``) on free ports, as their control
    clients; stop them after."""
    started: list[SandboxCtl] = []

    def make(
        *, rps: int | None = None, dev_webhooks: bool = True, **state_kwargs: Any
    ) -> SandboxCtl:
        state = SandboxState(bot_username="migrator_bot", **state_kwargs)
        app = create_sandbox_app(token=TOKEN, rps=rps, state=state,
                                 dev_webhooks=dev_webhooks)
        sb = SandboxCtl(run_in_thread(app), token=TOKEN)
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.close()
        sb.handle.shutdown()


@pytest.fixture
def sandbox(make_sandbox) -> SandboxCtl:
    return make_sandbox()


@pytest.fixture(scope="session")
def openapi_raw() -> dict:
    """The official Max Bot API schema, from ../shared next to the repository."""
    path = OPENAPI_PATH.resolve()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Max Bot API schema missing at {path} (required in CI)")
        pytest.skip(f"Max Bot API schema not found at {path}; contract tests need ../shared")
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def make_openapi(openapi_raw) -> Callable[[str], Any]:
    """An openapi-core ``OpenAPI`` for the schema, served at ``base_url``.

    Three documented quirks of the published document are normalised, nothing else:
    ``servers`` is set to the sandbox URL; the security scheme is the ``Authorization``
    header the schema's own examples use (the scheme still names an ``access_token`` query
    parameter); ``/chats/{chatLink}`` (channels only, unused by Migrator) is dropped, since
    its template also matches ``/chats/-123`` and shadows ``/chats/{chatId}``.
    """
    from openapi_core import Config, OpenAPI

    def make(base_url: str) -> Any:
        spec = copy.deepcopy(openapi_raw)
        spec["servers"] = [{"url": base_url}]
        spec["components"]["securitySchemes"]["access_token"] = {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
        }
        spec["paths"].pop("/chats/{chatLink}", None)
        return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))

    return make

"""Sandbox behaviour: webhook delivery (secret, retries, duplicates, reordering), long
polling, its own rate limit, deep links and the CLI command."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from flask import Flask, request

from migrator.max.errors import MaxBadRequest, MaxError, MaxRateLimited, MaxSoftFailure
from migrator.sandbox import run_in_thread
from migrator.sandbox.cli import sandbox_command
from migrator.sandbox.client import SandboxControlError

SECRET = "hook-Secret_42"


class Receiver:
    """A tiny webhook endpoint; answers with the statuses in ``answers`` first, then 200."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.received: list[dict] = []  # {"status", "secret", "update"}
        self.lock = threading.Lock()
        app = Flask("receiver")

        @app.post("/hook")
        def hook():
            with self.lock:
                status = self.answers.pop(0) if self.answers else 200
                self.received.append(
                    {
                        "status": status,
                        "secret": request.headers.get("X-Max-Bot-Api-Secret"),
                        "update": request.get_json(),
                    }
                )
            return ("", status)

        self.server = run_in_thread(app)
        self.url = self.server.url + "/hook"

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 8.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.received)
            if predicate(got):
                return got
            time.sleep(0.02)
        raise AssertionError(f"webhook receiver timed out; got {got}")


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(answers=None) -> Receiver:
        r = Receiver(answers)
        made.append(r)
        return r

    yield make
    for r in made:
        r.server.shutdown()


def _oks(kind: str) -> Callable[[list[dict]], bool]:
    return lambda got: any(g["status"] == 200 and g["update"]["update_type"] == kind for g in got)


def test_webhook_delivers_bot_added_with_the_secret(sandbox, receiver):
    rcv = receiver()
    c = sandbox.client()
    c.subscribe(rcv.url, ["bot_added", "bot_removed"], SECRET)
    chat_id = sandbox.chat_with_bot()
    owner = sandbox.chat(chat_id)["owner_id"]
    got = rcv.wait_for(_oks("bot_added"))
    update = got[0]["update"]
    assert got[0]["secret"] == SECRET
    assert update["update_type"] == "bot_added"
    assert update["chat_id"] == chat_id
    assert update["user"]["user_id"] == owner
    assert update["is_channel"] is False
    assert abs(update["timestamp"] - time.time() * 1000) < 10_000  # Unix milliseconds
    # not subscribed to user_added: only the bot_removed follows
    sandbox.ctl("POST", f"/chats/{chat_id}/members", {"user_id": sandbox.user()})
    sandbox.ctl("DELETE", f"/chats/{chat_id}/bot")
    got = rcv.wait_for(_oks("bot_removed"))
    assert [g["update"]["update_type"] for g in got] == ["bot_added", "bot_removed"]
    # long polling is refused while a webhook is active
    with pytest.raises(MaxError) as exc:
        c.get_updates(timeout=0)
    assert exc.value.status == 405


def test_duplicate_fault_delivers_twice(sandbox, receiver):
    rcv = receiver()
    sandbox.client().subscribe(rcv.url, ["bot_added"], SECRET)
    sandbox.ctl("POST", "/faults", {"duplicate_delivery": {"next": 1}})
    sandbox.chat_with_bot()
    got = rcv.wait_for(lambda g: len(g) >= 2)
    time.sleep(0.2)
    assert len(rcv.received) == 2
    assert got[0]["update"] == got[1]["update"]
    assert all(g["secret"] == SECRET for g in got)
    assert [d["duplicate"] for d in sandbox.delivery_log()["deliveries"]] == [False, True]


def test_non_200_answers_are_retried(sandbox, receiver):
    rcv = receiver(answers=[500, 404])
    sandbox.state.webhook_retry_base = 0.1
    sandbox.client().subscribe(rcv.url, ["bot_started"], SECRET)
    uid = sandbox.user()
    sandbox.ctl("POST", f"/users/{uid}/start", {"payload": "tok-1"})
    got = rcv.wait_for(_oks("bot_started"))
    assert [g["status"] for g in got] == [500, 404, 200]
    assert all(g["update"] == got[0]["update"] for g in got)
    # the sandbox logs a delivery once the receiver's answer is in: a moment after it got it
    deadline = time.monotonic() + 5
    while len(sandbox.delivery_log()["deliveries"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [d["attempt"] for d in sandbox.delivery_log()["deliveries"]] == [1, 2, 3]


def test_reorder_fault_lets_a_later_update_overtake(sandbox, receiver):
    rcv = receiver()
    sandbox.client().subscribe(rcv.url, None, SECRET)
    sandbox.ctl("POST", "/faults", {"reorder_delivery": {"next": 1, "hold_ms": 300}})
    chat_id = sandbox.chat_with_bot()  # bot_added is held back
    sandbox.ctl("POST", f"/chats/{chat_id}/title", {"title": "Renamed"})
    got = rcv.wait_for(lambda g: len(g) >= 2)
    assert [g["update"]["update_type"] for g in got] == ["chat_title_changed", "bot_added"]


def test_subscription_urls(sandbox):
    """With the development flag (the test default), http:// on a loopback host passes too."""
    c = sandbox.client()
    c.subscribe("https://migrator.example.ru/max/webhook", ["bot_added"], SECRET)
    c.subscribe("http://localhost:5000/max/webhook")
    for bad in ("http://migrator.example.ru/hook", "ftp://127.0.0.1/x", "not a url",
                "https://migrator.example.ru:8443/hook"):
        with pytest.raises(MaxBadRequest):
            c.subscribe(bad)
    with pytest.raises(MaxBadRequest):
        c.subscribe("https://migrator.example.ru/max/webhook", secret="bad secret!")
    subs = {s["url"]: s for s in c.get_subscriptions()}
    assert subs["https://migrator.example.ru/max/webhook"]["update_types"] == ["bot_added"]
    assert set(subs) == {
        "https://migrator.example.ru/max/webhook",
        "http://localhost:5000/max/webhook",
    }
    assert c.unsubscribe("http://localhost:5000/max/webhook")["success"] is True
    with pytest.raises(MaxSoftFailure, match="no such subscription"):
        sandbox.client(max_retries=0).unsubscribe("http://localhost:5000/max/webhook")


def test_long_polling_returns_queued_updates_and_advances_the_marker(sandbox):
    c = sandbox.client()
    start = c.get_updates(timeout=0)
    assert start.updates == []
    chat_id = sandbox.chat_with_bot()
    uid = sandbox.user("Олег")
    sandbox.ctl(
        "POST", "/deeplink", {"user_id": uid, "url": "https://max.ru/migrator_bot?start=abc_123"}
    )
    first = c.get_updates(marker=start.marker, timeout=0, limit=1)
    assert [u["update_type"] for u in first.updates] == ["bot_added"]
    second = c.get_updates(marker=first.marker, timeout=0)
    assert second.marker > first.marker
    assert len(second.updates) == 1
    started = second.updates[0]
    assert started["update_type"] == "bot_started"
    assert started["payload"] == "abc_123"
    assert started["user"]["user_id"] == uid
    assert isinstance(started["chat_id"], int)
    assert c.get_updates(marker=second.marker, timeout=0).updates == []

    # a waiting poll wakes up when an update arrives
    timer = threading.Timer(
        0.3, lambda: sandbox.ctl("POST", f"/chats/{chat_id}/title", {"title": "X"})
    )
    timer.start()
    t0 = time.monotonic()
    third = c.get_updates(marker=second.marker, timeout=5)
    assert 0.2 < time.monotonic() - t0 < 4
    assert [u["update_type"] for u in third.updates] == ["chat_title_changed"]
    assert third.updates[0]["title"] == "X"

    # types filter
    sandbox.ctl("POST", f"/chats/{chat_id}/members", {"user_id": uid})
    sandbox.ctl("DELETE", f"/chats/{chat_id}/members/{uid}")
    only = c.get_updates(marker=third.marker, timeout=0, types=["user_removed"])
    assert [u["update_type"] for u in only.updates] == ["user_removed"]


def test_deeplink_must_name_the_bot(sandbox):
    uid = sandbox.user()
    with pytest.raises(SandboxControlError) as refused:
        sandbox.open_deeplink(uid, "https://max.ru/other_bot?start=x")
    assert refused.value.status == 400 and "proto.payload" in str(refused.value)


def test_sandbox_enforces_its_rate_limit_with_429(make_sandbox):
    sb = make_sandbox(rps=5)
    c = sb.client(max_retries=0)
    with pytest.raises(MaxRateLimited):
        for _ in range(10):
            c.get_me()
    statuses = [r["status"] for r in sb.requests()]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429


def test_bot_messages_land_in_the_users_dialog(sandbox):
    c = sandbox.client()
    uid = sandbox.user()
    with pytest.raises(MaxError) as exc:
        c.send_message("Здравствуйте", user_id=uid)  # has not pressed Start yet
    assert exc.value.status == 403
    sandbox.ctl("POST", f"/users/{uid}/start", {"payload": "p"})
    c.send_message("Здравствуйте", user_id=uid)
    msgs = sandbox.ctl("GET", f"/users/{uid}/messages")["messages"]
    assert [m["body"]["text"] for m in msgs] == ["Здравствуйте"]


def test_cli_command_is_a_click_command():
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--host" in result.output
    assert sandbox_command.name == "sandbox"


def test_the_control_client_raises_on_a_refused_request(sandbox):
    with pytest.raises(SandboxControlError) as refused:
        sandbox.chat(-1)
    assert refused.value.status == 404
    user = sandbox.create_user("Анна", "Петрова", allow_add=False)
    assert sandbox.get_user(user["user_id"])["allow_add"] is False
    sandbox.reset()
    assert sandbox.users() == [] and sandbox.chats() == []

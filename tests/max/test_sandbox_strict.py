"""The sandbox is as strict as the schema: soft failures, unique ids, the last update without
a marker, HTTPS-443 webhooks, unsubscribing after failed deliveries, silent rights changes,
chats with a link, users who stopped the bot. Every API answer is validated against the
official schema."""

from __future__ import annotations

import time

import httpx
import pytest
from maxtest_support import TOKEN, RecordingTransport
from test_max_contract import validate_exchange
from test_max_sandbox import SECRET, Receiver

from migrator.max.errors import MaxBadRequest, MaxForbidden, MaxSoftFailure
from migrator.sandbox.client import SandboxControlError


@pytest.fixture
def checked(make_openapi, openapi_raw):
    """A recording transport whose every exchange is validated against the schema at the end."""
    rec = RecordingTransport()
    used: dict[str, str] = {}
    yield rec, used
    api = make_openapi(used["url"])
    error_schema = openapi_raw["components"]["schemas"]["Error"]
    assert rec.exchanges
    for req, resp in rec.exchanges:
        validate_exchange(api, error_schema, used["url"], req, resp)


def test_soft_failures_change_nothing_and_raise_a_retryable_error(sandbox, checked):
    rec, used = checked
    used["url"] = sandbox.url
    c = sandbox.client(transport=rec, max_retries=0)
    chat_id = sandbox.chat_with_bot()
    uid = sandbox.user("Анна")
    sandbox.ctl("POST", "/faults", {"soft_fail": {"next": 1}})
    with pytest.raises(MaxSoftFailure) as exc:
        c.add_members(chat_id, [uid])
    assert exc.value.retryable and exc.value.status == 200 and "injected" in exc.value.message
    members = {m["user_id"] for m in sandbox.ctl("GET", f"/chats/{chat_id}")["members"]}
    assert uid not in members  # nothing was done
    assert c.add_members(chat_id, [uid]).failed_user_ids == []  # the retry goes through

    # aimed at pins only: other calls still succeed
    mid = c.send_message("Правила чата", chat_id=chat_id)["body"]["mid"]
    sandbox.ctl("POST", "/faults",
                {"soft_fail": {"probability": 1.0, "method": "PUT", "path": "/chats/{chatId}/pin"}})
    with pytest.raises(MaxSoftFailure):
        c.pin_message(chat_id, mid)
    assert c.get_pinned(chat_id) is None
    assert c.get_chat(chat_id)["chat_id"] == chat_id
    sandbox.ctl("POST", "/faults", {"soft_fail": {"probability": 0.0}})
    assert c.pin_message(chat_id, mid)["success"] is True
    assert [r["fault"] for r in sandbox.requests() if r["path"].endswith("/pin")
            and r["method"] == "PUT"] == ["soft_fail", None]


def test_the_client_retries_a_soft_failure_by_itself(sandbox):
    c = sandbox.client(max_retries=2)
    chat_id = sandbox.chat_with_bot()
    uid = sandbox.user()
    sandbox.ctl("POST", "/faults", {"soft_fail": {"next": 2}})
    assert c.add_members(chat_id, [uid]).failed_user_ids == []
    adds = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert [r["fault"] for r in adds] == ["soft_fail", "soft_fail", None]


def test_user_ids_must_be_unique(sandbox, openapi_raw):
    chat_id = sandbox.chat_with_bot()
    uid = sandbox.user()
    rec = RecordingTransport()
    with httpx.Client(base_url=sandbox.url, transport=rec, headers={"Authorization": TOKEN}) as h:
        add = h.post(f"/chats/{chat_id}/members", json={"user_ids": [uid, uid]})
        get = h.get(f"/chats/{chat_id}/members", params={"user_ids": f"{uid},{uid}"})
    assert add.status_code == 400 and add.json()["code"] == "proto.payload"
    assert get.status_code == 400
    # what the schema says (its UserIdsList nests the rule where validators miss it)
    ids = openapi_raw["components"]["schemas"]["UserIdsList"]["properties"]["user_ids"]
    assert ids["schema"]["uniqueItems"] is True
    members = {m["user_id"] for m in sandbox.ctl("GET", f"/chats/{chat_id}")["members"]}
    assert uid not in members
    # the client de-duplicates, so it never sends such a request
    assert sandbox.client().add_members(chat_id, [uid, uid]).requested == 1


def test_no_marker_returns_only_the_last_update(sandbox, checked):
    rec, used = checked
    used["url"] = sandbox.url
    c = sandbox.client(transport=rec)
    for name in ("Первый", "Второй", "Третий"):
        sandbox.started_user(name)
    batch = c.get_updates(timeout=0)
    assert [u["user"]["first_name"] for u in batch.updates] == ["Третий"]
    assert c.get_updates(marker=batch.marker, timeout=0).updates == []  # the others are lost
    sandbox.started_user("Четвёртый")
    sandbox.started_user("Пятый")
    kept = c.get_updates(marker=batch.marker, timeout=0)
    assert [u["user"]["first_name"] for u in kept.updates] == ["Четвёртый", "Пятый"]


def test_webhooks_need_https_on_443_without_the_development_flag(make_sandbox, checked):
    sb = make_sandbox(dev_webhooks=False)
    rec, used = checked
    used["url"] = sb.url
    c = sb.client(transport=rec, max_retries=0)
    for bad in ("http://127.0.0.1:5000/max/webhook", "https://127.0.0.1:8443/max/webhook",
                "https://migrator.example.ru:80/hook", "http://migrator.example.ru/hook"):
        with pytest.raises(MaxBadRequest, match="443"):
            c.subscribe(bad, ["bot_added"], SECRET)
    assert c.subscribe("https://migrator.example.ru/max/webhook", ["bot_added"], SECRET)
    assert c.subscribe("https://migrator.example.ru:443/other", None, SECRET)
    assert len(c.get_subscriptions()) == 2
    assert sb.ctl("GET", "/webhooks")["dev_webhooks"] is False


def test_a_failing_webhook_is_unsubscribed_after_the_compressed_eight_hours(sandbox):
    rcv = Receiver(answers=[500] * 1000)
    try:
        c = sandbox.client()
        settings = sandbox.ctl("GET", "/webhooks")
        assert settings["unsubscribe_after"] == 8 * 3600
        sandbox.ctl("POST", "/webhooks", {"retry_base": 0.05, "retry_factor": 1.0,
                                          "unsubscribe_after": 0.5})
        c.subscribe(rcv.url, None, SECRET)
        sandbox.chat_with_bot()
        deadline = time.monotonic() + 8
        while c.get_subscriptions() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get_subscriptions() == []
        assert any(d["error"] == "unsubscribed after failures"
                   for d in sandbox.delivery_log()["deliveries"])
        assert len(rcv.received) >= 2
        # polling works again once the webhook is gone
        assert c.get_updates(timeout=0).updates is not None
    finally:
        rcv.server.shutdown()


def test_a_successful_delivery_resets_the_failure_clock(sandbox):
    rcv = Receiver(answers=[500, 500])
    try:
        c = sandbox.client()
        sandbox.ctl("POST", "/webhooks", {"retry_base": 0.05, "retry_factor": 1.0,
                                          "unsubscribe_after": 120})
        c.subscribe(rcv.url, None, SECRET)
        sandbox.chat_with_bot()
        got = rcv.wait_for(lambda got: any(g["status"] == 200 for g in got))
        assert [g["status"] for g in got][:2] == [500, 500]
        deadline = time.monotonic() + 8  # the deliverer notes the answer after the receiver
        while time.monotonic() < deadline:
            subs = sandbox.ctl("GET", "/webhooks")["subscriptions"]
            if [s["failing_since"] for s in subs] == [None]:
                break
            time.sleep(0.05)
        assert [s["failing_since"] for s in subs] == [None]
    finally:
        rcv.server.shutdown()


def test_silent_rights_changes_send_no_update(sandbox, checked):
    rec, used = checked
    used["url"] = sandbox.url
    c = sandbox.client(transport=rec, max_retries=0)
    start = c.get_updates(timeout=0)
    chat_id = sandbox.chat_with_bot(perms=[], is_admin=False)
    uid = sandbox.user()
    with pytest.raises(MaxForbidden):
        c.add_members(chat_id, [uid])
    sandbox.ctl("PATCH", f"/chats/{chat_id}/bot",
                {"permissions": ["read_all_messages", "add_remove_members", "pin_message"]})
    assert c.bot_rights(chat_id).missing({"add_remove_members", "pin_message"}) == set()
    assert c.add_members(chat_id, [uid]).failed_user_ids == []
    sandbox.ctl("PATCH", f"/chats/{chat_id}/bot", {"permissions": [], "is_admin": False})
    with pytest.raises(MaxForbidden):
        c.add_members(chat_id, [sandbox.user()])
    kinds = [u["update_type"] for u in c.get_updates(marker=start.marker, timeout=0).updates]
    assert kinds == ["bot_added", "user_added"]  # no update for the promotion or demotion


def test_chats_with_a_link(sandbox, checked):
    rec, used = checked
    used["url"] = sandbox.url
    c = sandbox.client(transport=rec)
    owner = sandbox.user("Owner")
    linked = sandbox.create_chat("Школа №1 — учителя", owner,
                                 link="https://max.ru/join/AbCdEf123")["chat_id"]
    plain = sandbox.create_chat("Школа №1 — учителя", owner)["chat_id"]
    for cid in (linked, plain):
        sandbox.ctl("POST", f"/chats/{cid}/bot", {})
    assert c.get_chat(linked)["link"] == "https://max.ru/join/AbCdEf123"
    assert c.get_chat(plain)["link"] is None
    # the owner creates a link later, or removes one: silently, as on Max
    before = len(sandbox.ctl("GET", "/updates")["updates"])
    sandbox.ctl("PATCH", f"/chats/{plain}", {"link": "https://max.ru/join/Later42"})
    sandbox.ctl("PATCH", f"/chats/{linked}", {"link": None})
    assert c.get_chat(plain)["link"] == "https://max.ru/join/Later42"
    assert c.get_chat(linked)["link"] is None
    assert len(sandbox.ctl("GET", "/updates")["updates"]) == before
    with pytest.raises(SandboxControlError) as refused:
        sandbox.ctl("PATCH", f"/chats/{plain}", {"link": "ftp://nope"})
    assert refused.value.status == 400


def test_users_who_stopped_the_bot_get_no_messages(sandbox, checked):
    rec, used = checked
    used["url"] = sandbox.url
    c = sandbox.client(transport=rec, max_retries=0)
    uid = sandbox.started_user("Ольга")
    c.send_message("Здравствуйте", user_id=uid)
    sandbox.ctl("POST", f"/users/{uid}/stop")
    assert sandbox.ctl("GET", f"/users/{uid}")["bot_started"] is False
    with pytest.raises(MaxForbidden):
        c.send_message("Ещё раз", user_id=uid)
    kinds = [u["update_type"] for u in c.get_updates(timeout=0).updates]
    assert kinds == ["bot_stopped"]

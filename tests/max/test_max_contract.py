"""Contract tests: every client method against the sandbox over real HTTP, and every request
and response checked against the official Max Bot API schema with openapi-core."""

from __future__ import annotations

import json

import httpx
import pytest
from maxtest_support import TOKEN, RecordingTransport
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from migrator.max.errors import (
    MaxAuthError,
    MaxBadRequest,
    MaxForbidden,
    MaxNotFound,
    MaxRateLimited,
    MaxUnavailable,
)

# (method, path template) of every operation the client uses
CLIENT_OPERATIONS = {
    ("GET", "/me"),
    ("GET", "/chats/{chatId}"),
    ("PATCH", "/chats/{chatId}"),
    ("GET", "/chats/{chatId}/members"),
    ("POST", "/chats/{chatId}/members"),
    ("DELETE", "/chats/{chatId}/members"),
    ("GET", "/chats/{chatId}/members/me"),
    ("GET", "/chats/{chatId}/members/admins"),
    ("POST", "/messages"),
    ("GET", "/messages"),
    ("GET", "/chats/{chatId}/pin"),
    ("PUT", "/chats/{chatId}/pin"),
    ("DELETE", "/chats/{chatId}/pin"),
    ("GET", "/subscriptions"),
    ("POST", "/subscriptions"),
    ("DELETE", "/subscriptions"),
    ("GET", "/updates"),
}


def _mock_request(base_url: str, req: httpx.Request) -> MockRequest:
    return MockRequest(
        base_url,
        req.method,
        req.url.path,
        args=list(req.url.params.multi_items()),
        headers=dict(req.headers),
        data=req.content or None,
        content_type=req.headers.get("content-type", "application/json"),
    )


def _mock_response(resp: httpx.Response) -> MockResponse:
    return MockResponse(
        resp.content,
        resp.status_code,
        headers=dict(resp.headers),
        content_type=resp.headers.get("content-type", "application/json"),
    )


def validate_exchange(api, error_schema: dict, base_url: str, req, resp) -> str:
    """Validate one exchange; returns how the response was checked.

    Statuses the operation declares are validated by openapi-core. The schema documents
    400/401/403/404/405/429/503 and the ``Error`` body globally (``info.description``) but
    most operations list only a few of them; such answers are checked against
    ``components.schemas.Error``.
    """
    mreq = _mock_request(base_url, req)
    api.validate_request(mreq)
    try:
        api.validate_response(mreq, _mock_response(resp))
        return "operation"
    except ResponseNotFound:
        assert resp.status_code >= 400, f"undeclared success status {resp.status_code}"
        OAS30Validator(error_schema).validate(resp.json())
        return "Error schema"


def test_every_client_method_matches_the_schema(sandbox, make_openapi, openapi_raw):
    api = make_openapi(sandbox.url)
    error_schema = openapi_raw["components"]["schemas"]["Error"]
    rec = RecordingTransport()
    calls: list[tuple[str, str, int | None]] = []
    c = sandbox.client(
        transport=rec, max_retries=0, on_call=lambda m, p, s, ms, cid: calls.append((m, p, s))
    )

    start = c.get_updates(timeout=0)  # nothing waits yet: just the marker to resume from
    assert start.updates == [] and start.marker is not None
    chat_id = sandbox.chat_with_bot()
    owner = sandbox.chat(chat_id)["owner_id"]
    u1 = sandbox.user("Анна", last_name="Петрова", username="anna")
    u2 = sandbox.user("Борис")
    private = sandbox.user("Вера", allow_add=False)

    me = c.get_me()
    assert me["is_bot"] is True and me["username"] == "migrator_bot"
    chat = c.get_chat(chat_id)
    assert chat["chat_id"] == chat_id and chat["status"] == "active" and chat["type"] == "chat"
    assert c.edit_chat(chat_id, title="Новое название")["title"] == "Новое название"

    result = c.add_members(chat_id, [u1, u2, private, 987654321])
    assert result.calls == 1
    assert sorted(result.failed_user_ids) == sorted([private, 987654321])
    assert result.reason_for(private) == "add.participant.privacy"
    assert result.reason_for(987654321) == "add.participant.not.found"

    page = c.get_members(chat_id, count=2)
    assert len(page.members) == 2 and page.marker is not None
    everyone = {m["user_id"] for m in c.iter_members(chat_id, count=2)}
    assert everyone == {owner, u1, u2, me["user_id"]}
    only = c.get_members(chat_id, user_ids=[u1])
    assert [m["user_id"] for m in only.members] == [u1]

    assert c.remove_member(chat_id, u2, block=True)["success"] is True
    mine = c.get_my_membership(chat_id)
    assert mine["user_id"] == me["user_id"] and mine["is_admin"] is True
    assert c.bot_permissions(chat_id) >= {"read_all_messages", "add_remove_members", "pin_message"}
    admins = c.get_admins(chat_id)
    assert {a["user_id"] for a in admins} == {owner, me["user_id"]}

    msg = c.send_message("**Добро пожаловать**", chat_id=chat_id, format="markdown")
    mid = msg["body"]["mid"]
    assert c.pin_message(chat_id, mid)["success"] is True
    assert c.get_pinned(chat_id)["body"]["mid"] == mid
    assert c.unpin(chat_id)["success"] is True
    assert c.get_pinned(chat_id) is None
    later = c.send_message("Второе сообщение", chat_id=chat_id)
    listed = c.get_messages(chat_id, count=100)
    assert [m["body"]["mid"] for m in listed] == [later["body"]["mid"], mid]  # newest first
    assert [m["body"]["mid"] for m in c.get_messages(chat_id, count=1)] == [later["body"]["mid"]]
    assert c.get_messages(chat_id, from_=msg["timestamp"] - 1) == []
    assert later["body"]["mid"] in {
        m["body"]["mid"] for m in c.get_messages(chat_id, to=later["timestamp"])}

    sandbox.ctl("POST", f"/users/{u1}/start", {"payload": "inv-abc"})
    dm = c.send_message("Вы подключены", user_id=u1)
    assert dm["recipient"]["user_id"] == u1

    batch = c.get_updates(marker=start.marker, timeout=0,
                          types=["bot_added", "bot_started", "user_added"])
    assert {u["update_type"] for u in batch.updates} == {"bot_added", "bot_started", "user_added"}
    assert c.get_updates(marker=batch.marker, timeout=0).updates == []

    hook = "https://127.0.0.1:1/max/webhook"
    assert c.subscribe(hook, ["bot_added", "bot_started"], "s3cret-Value")["success"] is True
    assert [s["url"] for s in c.get_subscriptions()] == [hook]
    assert c.unsubscribe(hook)["success"] is True

    # error answers, each through the client
    with pytest.raises(MaxAuthError):
        sandbox.client(token="wrong-token", transport=rec, max_retries=0).get_me()
    with pytest.raises(MaxNotFound):
        c.get_members(-1)
    weak_chat = sandbox.chat_with_bot(perms=["write"])
    weak_msg = c.send_message("hi", chat_id=weak_chat)
    with pytest.raises(MaxForbidden):
        c.add_members(weak_chat, [u1])
    with pytest.raises(MaxForbidden):
        c.pin_message(weak_chat, weak_msg["body"]["mid"])
    with pytest.raises(MaxBadRequest):
        c.subscribe("http://example.org/max/webhook", ["bot_added"], "s3cret-Value")
    sandbox.ctl("POST", "/faults", {"fail_429": {"next": 1, "retry_after": 0.01}})
    with pytest.raises(MaxRateLimited):
        c.get_me()
    sandbox.ctl("POST", "/faults", {"fail_503": {"next": 1}})
    with pytest.raises(MaxUnavailable):
        c.get_chat(chat_id)

    assert {(m, p) for m, p, _ in calls} == CLIENT_OPERATIONS
    statuses = {resp.status_code for _, resp in rec.exchanges}
    assert statuses == {200, 400, 401, 403, 404, 429, 503}

    checked = [
        validate_exchange(api, error_schema, sandbox.url, req, resp) for req, resp in rec.exchanges
    ]
    assert checked.count("operation") > len(CLIENT_OPERATIONS)
    assert len(checked) == len(rec.exchanges)


def test_sandbox_rejects_bodies_the_schema_forbids(sandbox, make_openapi, openapi_raw):
    """Raw requests the client refuses to send: the sandbox answers 400 with an Error body,
    and the schema itself flags the request as invalid."""
    from openapi_core.validation.request.exceptions import InvalidRequestBody

    api = make_openapi(sandbox.url)
    error_schema = openapi_raw["components"]["schemas"]["Error"]
    chat_id = sandbox.chat_with_bot()
    rec = RecordingTransport()
    with httpx.Client(base_url=sandbox.url, transport=rec, headers={"Authorization": TOKEN}) as h:
        long = h.post(
            "/messages",
            params={"chat_id": chat_id},
            json={"text": "я" * 4001, "attachments": None, "link": None},
        )
        many = h.post(f"/chats/{chat_id}/members", json={"user_ids": list(range(1, 102))})
    for resp in (long, many):
        assert resp.status_code == 400
        OAS30Validator(error_schema).validate(resp.json())
    with pytest.raises(InvalidRequestBody):
        api.validate_request(_mock_request(sandbox.url, rec.exchanges[0][0]))
    assert validate_exchange(api, error_schema, sandbox.url, *rec.exchanges[1]) == "Error schema"


def test_validation_catches_a_broken_answer(sandbox, make_openapi):
    """The validator is not a rubber stamp: a Chat without its required title fails."""
    from openapi_core.validation.response.exceptions import InvalidData

    api = make_openapi(sandbox.url)
    chat_id = sandbox.chat_with_bot()
    rec = RecordingTransport()
    sandbox.client(transport=rec).get_chat(chat_id)
    req, resp = rec.exchanges[0]
    body = json.loads(resp.content)
    del body["title"]
    broken = MockResponse(json.dumps(body).encode(), 200, content_type="application/json")
    with pytest.raises(InvalidData):
        api.validate_response(_mock_request(sandbox.url, req), broken)


def test_get_messages_by_ids_errors_and_a_missing_method(sandbox, make_openapi, openapi_raw):
    """``GET /messages`` with ``message_ids`` (other chats too), a chat the bot left or never
    joined, bad parameters; and the ``not_found`` fault that plays a platform without it."""
    api = make_openapi(sandbox.url)
    error_schema = openapi_raw["components"]["schemas"]["Error"]
    rec = RecordingTransport()
    c = sandbox.client(transport=rec, max_retries=0)
    chat_id = sandbox.chat_with_bot()
    owner = sandbox.chat(chat_id)["owner_id"]
    other_chat = sandbox.chat_with_bot()
    first = c.send_message("Первое", chat_id=chat_id)
    sandbox.ctl("POST", f"/chats/{chat_id}/messages",
                {"user_id": owner, "text": "Ответ владельца"})
    elsewhere = c.send_message("В другом чате", chat_id=other_chat)

    listed = c.get_messages(chat_id)
    assert [m["body"]["text"] for m in listed] == ["Ответ владельца", "Первое"]
    assert [m["sender"]["is_bot"] for m in listed] == [False, True]
    with httpx.Client(base_url=sandbox.url, transport=rec, headers={"Authorization": TOKEN}) as h:
        ids = f"{first['body']['mid']},{elsewhere['body']['mid']},mid.unknown"
        by_ids = h.get("/messages", params={"message_ids": ids})
        assert by_ids.status_code == 200
        assert {m["body"]["text"] for m in by_ids.json()["messages"]} == {"Первое",
                                                                          "В другом чате"}
        for bad in ({}, {"chat_id": chat_id, "count": 0}, {"chat_id": chat_id, "count": 101}):
            assert h.get("/messages", params=bad).status_code == 400
    with pytest.raises(MaxNotFound):
        c.get_messages(-1)
    sandbox.ctl("DELETE", f"/chats/{other_chat}/bot", {})
    with pytest.raises(MaxForbidden):
        c.get_messages(other_chat)
    with pytest.raises(ValueError):
        c.get_messages(chat_id, count=101)

    sandbox.ctl("POST", "/faults",
                {"not_found": {"probability": 1.0, "method": "GET", "path": "/messages"}})
    with pytest.raises(MaxNotFound):
        c.get_messages(chat_id)
    assert c.get_chat(chat_id)["messages_count"] == 2  # other methods still answer
    sandbox.ctl("POST", "/faults", {"not_found": {"probability": 0.0}})
    assert len(c.get_messages(chat_id)) == 2

    from openapi_core.validation.request.exceptions import RequestValidationError

    checked = []
    for req, resp in rec.exchanges:
        if req.url.params.get("count") in ("0", "101"):  # the schema refuses these too
            with pytest.raises(RequestValidationError):
                api.validate_request(_mock_request(sandbox.url, req))
            OAS30Validator(error_schema).validate(resp.json())
            continue
        checked.append(validate_exchange(api, error_schema, sandbox.url, req, resp))
    assert checked.count("operation") >= 6 and "Error schema" in checked

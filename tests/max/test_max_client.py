"""Client behaviour against the sandbox: batching, paging, retries, errors, token hygiene."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from maxtest_support import TOKEN

from migrator.max.client import MaxClient
from migrator.max.errors import MaxBadRequest, MaxRateLimited, MaxUnavailable


def test_adding_250_ids_takes_three_calls_and_collects_failures(sandbox):
    chat_id = sandbox.chat_with_bot()
    real = [sandbox.user(f"User{i}") for i in range(230)]
    private = [sandbox.user(f"Private{i}", allow_add=False) for i in range(5)]
    unknown = list(range(900_000, 900_015))
    ids = real + private + unknown
    assert len(ids) == 250
    c = sandbox.client()
    result = c.add_members(chat_id, ids + real[:10])  # duplicates are sent once

    assert result.calls == 3
    assert result.requested == 250
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(posts) == 3
    assert sorted(result.failed_user_ids) == sorted(private + unknown)
    details = {d["error_code"]: sorted(d["user_ids"]) for d in result.failed_user_details}
    assert details == {
        "add.participant.privacy": sorted(private),
        "add.participant.not.found": sorted(unknown),
    }
    assert result.added_user_ids_count == 230
    members = {m["user_id"] for m in c.iter_members(chat_id)}
    assert set(real) <= members and not (set(private) & members)
    # idempotent: a repeat adds nobody and fails the same ids
    again = c.add_members(chat_id, ids)
    assert sorted(again.failed_user_ids) == sorted(private + unknown)


def test_retries_503_and_429_then_succeeds(sandbox):
    sleeps: list[float] = []
    calls: list[tuple] = []
    c = sandbox.client(
        sleep=sleeps.append, max_retries=4, on_call=lambda *a: calls.append(a), backoff_base=0.2
    )
    sandbox.ctl(
        "POST", "/faults", {"fail_503": {"next": 2}, "fail_429": {"next": 1, "retry_after": 0.7}}
    )
    assert c.get_me()["is_bot"] is True
    statuses = [r["status"] for r in sandbox.requests()]
    assert statuses == [503, 503, 429, 200]
    assert [a[2] for a in calls] == [503, 503, 429, 200]
    assert all(a[:2] == ("GET", "/me") for a in calls)
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4  # full jitter, exponential cap
    assert sleeps[2] == pytest.approx(0.7)  # Retry-After honoured


def test_gives_up_after_max_retries(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    c = sandbox.client(max_retries=2)
    sandbox.ctl("POST", "/faults", {"fail_503": {"next": 3}})
    with pytest.raises(MaxUnavailable) as exc:
        c.get_me()
    assert exc.value.status == 503 and exc.value.retryable
    assert len(sandbox.requests()) == 3

    sandbox.ctl("POST", "/faults", {"fail_429": {"next": 5, "retry_after": 0}})
    with pytest.raises(MaxRateLimited) as exc429:
        c.get_me()
    assert exc429.value.status == 429 and exc429.value.code == "too.many.requests"

    for err in (exc.value, exc429.value):
        assert TOKEN not in str(err) and TOKEN not in repr(err)
    assert TOKEN not in repr(c)
    assert caplog.records, "the client logs its retries"
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text


def test_token_echoed_by_a_server_is_redacted(caplog):
    """Even if an error body repeats the token, it reaches neither the exception nor the log."""
    caplog.set_level(logging.DEBUG)

    def echo(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"]
        return httpx.Response(
            503, json={"code": f"bad.{token}", "message": f"token {token} is overloaded"}
        )

    c = MaxClient(
        "http://max.test",
        TOKEN,
        transport=httpx.MockTransport(echo),
        max_retries=1,
        sleep=lambda s: None,
    )
    with pytest.raises(MaxUnavailable) as exc:
        c.get_me()
    assert "***" in exc.value.message
    for text in (str(exc.value), repr(exc.value), exc.value.code, caplog.text):
        assert TOKEN not in text


def test_network_errors_are_unavailable_with_no_status():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    calls: list[tuple] = []
    c = MaxClient(
        f"http://127.0.0.1:{port}",
        TOKEN,
        max_retries=2,
        sleep=lambda s: None,
        on_call=lambda *a: calls.append(a),
    )
    with pytest.raises(MaxUnavailable) as exc:
        c.get_chat(-5)
    assert exc.value.status is None and exc.value.retryable
    assert [(m, p, st, cid) for m, p, st, _, cid in calls] == [
        ("GET", "/chats/{chatId}", None, -5)
    ] * 3


def test_message_send_is_not_repeated_after_a_read_timeout(sandbox):
    """A timed-out POST /messages may have been delivered: no blind retry (no duplicates)."""
    chat_id = sandbox.chat_with_bot()
    c = sandbox.client(timeout=0.2, max_retries=3)
    sandbox.ctl("POST", "/faults", {"slow": {"next": 1, "ms": 600}})
    with pytest.raises(MaxUnavailable) as exc:
        c.send_message("Объявление", chat_id=chat_id)
    assert exc.value.code == "timeout"
    assert len([r for r in sandbox.requests() if r["path"] == "/messages"]) <= 1
    # a 503 means "not processed": that one is retried
    sandbox.ctl("POST", "/faults", {"fail_503": {"next": 1}})
    c2 = sandbox.client(max_retries=3)
    assert c2.send_message("Ещё раз", chat_id=chat_id)["body"]["text"] == "Ещё раз"


def test_client_side_checks_send_nothing(sandbox):
    c = sandbox.client()
    with pytest.raises(MaxBadRequest):
        c.send_message("x" * 4001, chat_id=-1)
    with pytest.raises(ValueError):
        c.send_message("hi", chat_id=-1, user_id=5)
    with pytest.raises(MaxBadRequest):
        c.get_members(-1, count=101)
    assert sandbox.requests() == []
    assert len(c.send_message("x" * 4000, user_id=sandbox.started_user())["body"]["text"]) == 4000


def test_bot_rights_report_missing_permissions(sandbox):
    chat_id = sandbox.chat_with_bot(perms=["write", "post_edit_delete_message"])
    c = sandbox.client()
    rights = c.bot_rights(chat_id)
    assert rights.is_admin
    assert rights.missing() == {"read_all_messages", "add_remove_members", "pin_message"}
    plain = sandbox.chat_with_bot(is_admin=False)
    assert c.bot_permissions(plain) == set()
    assert c.bot_rights(plain).missing() == {"read_all_messages", "add_remove_members",
                                             "pin_message"}

"""Webhook intake and update handling: secret, de-duplication, order tolerance."""

from __future__ import annotations

import importlib.util
import itertools
import json

import pytest
import sqlalchemy as sa
from maxapp_support import (
    TOKEN,
    bot_added,
    bot_removed,
    bot_started,
    title_changed,
    user_added,
    user_removed,
)
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.max.models import MaxChat, MaxChatMember, MaxUpdate

T0 = 1_760_000_000_000


def _count(ctx, model) -> int:
    n = ctx.scalar(sa.select(sa.func.count()).select_from(model))
    ctx.rollback()
    return n


def _chat(ctx, chat_id) -> MaxChat | None:
    chat = ctx.exec(select(MaxChat).where(MaxChat.chat_id == chat_id)).first()
    if chat is not None:
        ctx.expunge(chat)  # a detached copy: reading it later opens no transaction
    ctx.rollback()
    return chat


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", "maxapp-webhook-secret-43"])
def test_forged_webhook_is_refused_and_nothing_stored(ctx, deliver, secret):
    resp = deliver(bot_added(-100, T0), secret=secret)
    assert resp.status_code == 401
    assert _count(ctx, MaxUpdate) == 0
    assert _count(ctx, MaxChat) == 0


def test_an_empty_configured_secret_refuses_everything(app, ctx, deliver):
    app.config["MAX_WEBHOOK_SECRET"] = ""
    assert deliver(bot_added(-100, T0), secret="").status_code == 401
    assert deliver(bot_added(-100, T0), secret="anything").status_code == 401
    assert _count(ctx, MaxUpdate) == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"timestamp": 1}',
                                  b'{"update_type": 5}'])
def test_a_body_that_is_not_an_update_is_400(ctx, client, body):
    resp = client.post("/max/webhook", data=body, content_type="application/json",
                       headers={"X-Max-Bot-Api-Secret": "maxapp-webhook-secret-42"})
    assert resp.status_code == 400
    assert _count(ctx, MaxUpdate) == 0


def test_the_same_update_twice_is_stored_and_applied_once(ctx, deliver):
    update = user_added(-200, T0 + 5, 777)
    assert deliver(update).status_code == 200
    first = _chat(ctx, -200)
    assert deliver(update).status_code == 200
    assert deliver(dict(reversed(list(update.items())))).status_code == 200  # same JSON
    assert _count(ctx, MaxUpdate) == 1
    assert _count(ctx, MaxChatMember) == 1
    again = _chat(ctx, -200)
    assert (again.id, again.status, again.last_event_ts) == (
        first.id, first.status, first.last_event_ts)


def _snapshot(ctx, chat_id):
    chat = _chat(ctx, chat_id)
    members = ctx.exec(select(MaxChatMember).where(MaxChatMember.chat_id == chat.id)
                       .order_by(MaxChatMember.max_user_id)).all()
    state = {
        "status": chat.status, "title": chat.title, "added_at": chat.added_at,
        "added_by": (chat.added_by_max_user_id, chat.added_by_name),
        "removed_at": chat.removed_at, "last_event_ts": chat.last_event_ts,
        "members": [(m.max_user_id, m.is_present, m.last_event_ts) for m in members],
    }
    ctx.rollback()
    return state


def _history(chat_id):
    return [
        bot_added(chat_id, T0 + 10, user_id=501, name="Иван Петров"),
        title_changed(chat_id, T0 + 20, "Первое название"),
        user_added(chat_id, T0 + 30, 900),
        user_added(chat_id, T0 + 31, 901),
        bot_removed(chat_id, T0 + 40),
        user_removed(chat_id, T0 + 50, 900),
        bot_added(chat_id, T0 + 60, user_id=502, name="Пётр Сидоров"),
        title_changed(chat_id, T0 + 70, "Итоговое название"),
        bot_removed(chat_id, T0 + 80),
    ]


@pytest.mark.parametrize("order", ["reversed", "interleaved"])
def test_updates_out_of_order_reach_the_same_state_as_a_clean_delivery(ctx, deliver, order):
    clean, shuffled = -300, -301
    for update in _history(clean):
        assert deliver(update).status_code == 200
    history = _history(shuffled)
    if order == "reversed":
        history.reverse()
    else:
        history = history[1::2] + history[::2][::-1]
    for update in history:
        assert deliver(update).status_code == 200
    expected = _snapshot(ctx, clean)
    assert expected["status"] == "removed"
    assert expected["title"] == "Итоговое название"
    assert expected["added_by"] == (502, "Пётр Сидоров")
    assert expected["members"] == [(900, False, T0 + 50), (901, True, T0 + 31)]
    assert _snapshot(ctx, shuffled) == expected


def test_a_stale_bot_removed_does_not_override_a_newer_bot_added(ctx, deliver):
    assert deliver(bot_added(-400, T0 + 100)).status_code == 200
    assert deliver(bot_removed(-400, T0 + 50)).status_code == 200
    chat = _chat(ctx, -400)
    assert chat.status == "discovered"
    assert chat.last_event_ts == T0 + 100
    assert chat.removed_at is not None  # the history is kept, the status is not changed


def test_bot_removed_flags_the_linked_groups(ctx, deliver, make_org, make_group, make_user):
    from migrator.max.service import link_group

    org = make_org()
    group = make_group(org)
    admin = make_user("admin")
    deliver(bot_added(-500, T0))
    chat = ctx.exec(select(MaxChat).where(MaxChat.chat_id == -500)).one()
    link_group(group, chat, admin)
    ctx.commit()
    assert deliver(bot_removed(-500, T0 + 10)).status_code == 200
    ctx.refresh(group)
    assert group.needs_attention is True
    assert "removed" in group.attention_reason
    assert group.max_chat_id == chat.id  # the mapping is kept for a re-add
    ctx.rollback()
    assert _chat(ctx, -500).status == "removed"
    # re-added later: linked again, the flag it caused is cleared
    assert deliver(bot_added(-500, T0 + 20)).status_code == 200
    ctx.refresh(group)
    assert (group.needs_attention, _chat(ctx, -500).status) == (False, "linked")
    actions = ctx.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action.in_(["max.chat_discovered", "max.chat_removed"]))
        .order_by(AuditEvent.seq)).all()
    assert actions == ["max.chat_discovered", "max.chat_removed", "max.chat_discovered"]


def test_the_bot_added_by_a_linked_employee_assigns_the_chat_to_their_org(
        ctx, deliver, make_org, make_employee):
    org = make_org()
    make_employee(org, max_user_id=8801)
    deliver(bot_added(-600, T0, user_id=8801, name="Анна Кузнецова"))
    deliver(bot_added(-601, T0, user_id=8802))
    chat = _chat(ctx, -600)
    assert (chat.org_id, chat.added_by_name, chat.added_by_max_user_id) == (
        org.id, "Анна Кузнецова", 8801)
    assert _chat(ctx, -601).org_id is None


def test_bot_started_is_stored_and_handed_to_the_invitations(ctx, deliver, make_org,
                                                              make_employee):
    from datetime import timedelta

    from migrator.db import utcnow
    from migrator.people.models import InviteToken

    emp = make_employee(make_org())
    has_invites = importlib.util.find_spec("migrator.people.invites") is not None
    token = "tok-" + "a" * 40
    if has_invites:
        from migrator.people.invites import token_hash

        ctx.add(InviteToken(token_hash=token_hash(token), employee_id=emp.id,
                            expires_at=utcnow() + timedelta(days=3)))
        ctx.commit()
    assert deliver(bot_started(3001, T0, token)).status_code == 200
    row = ctx.exec(select(MaxUpdate)).one()
    ctx.rollback()
    assert (row.update_type, row.max_user_id) == ("bot_started", 3001)
    assert _count(ctx, MaxChat) == 0  # a dialog is not a chat
    if not has_invites:
        assert row.processed_at is None and "not available" in row.error
        return
    assert row.processed_at is not None and row.error is None
    ctx.refresh(emp)
    assert emp.max_user_id == 3001
    # the same Start delivered again changes nothing
    assert deliver(bot_started(3001, T0, token)).status_code == 200
    assert _count(ctx, MaxUpdate) == 1


def test_the_webhook_needs_no_csrf_token(app, ctx, deliver):
    app.config["WTF_CSRF_ENABLED"] = True
    assert deliver(bot_added(-150, T0)).status_code == 200
    assert deliver(bot_added(-151, T0), secret="wrong").status_code == 401
    assert _count(ctx, MaxUpdate) == 1


def test_a_failing_update_is_kept_with_its_error_and_answered_200(ctx, deliver):
    bad = {"update_type": "user_added", "timestamp": T0, "chat_id": -700}  # no user
    assert deliver(bad).status_code == 200
    row = ctx.exec(select(MaxUpdate)).one()
    ctx.rollback()
    assert row.processed_at is None and "no user" in row.error
    assert _count(ctx, MaxChat) == 0  # the handler's changes were rolled back


def test_unknown_update_types_are_stored_and_marked_processed(ctx, deliver):
    update = {"update_type": "message_callback", "timestamp": T0,
              "callback": {"timestamp": T0, "callback_id": "c1", "payload": "x",
                           "user": {"user_id": 5, "first_name": "A", "name": "A",
                                    "is_bot": False, "last_activity_time": T0}}}
    assert deliver(update).status_code == 200
    row = ctx.exec(select(MaxUpdate)).one()
    ctx.rollback()
    assert row.processed_at is not None and row.error is None


def test_process_pending_retries_rows_without_processed_at(ctx, runner, deliver):
    deliver({"update_type": "user_added", "timestamp": T0, "chat_id": -800})
    row = ctx.exec(select(MaxUpdate)).one()
    # an operator fixes the stored update (e.g. after a bug fix the handler accepts it)
    row.payload = row.payload.replace('"chat_id":-800', '"chat_id":-800,"user":{"user_id":9}')
    ctx.add(row)
    ctx.commit()
    result = runner.invoke(args=["max", "process-pending"])
    assert result.exit_code == 0, result.output
    assert "Updates processed: 1; still pending: 0" in result.output
    ctx.refresh(row)
    assert row.processed_at is not None and row.error is None
    assert _count(ctx, MaxChatMember) == 1
    assert TOKEN not in result.output


def test_many_updates_keep_their_own_rows(ctx, deliver):
    ids = itertools.count(1)
    for _ in range(5):
        deliver(user_added(-900, T0 + next(ids), 1000 + next(ids)))
    assert _count(ctx, MaxUpdate) == 5


def test_every_update_taken_in_is_audited_once_as_max(ctx, deliver, make_org, make_employee):
    org = make_org()
    make_employee(org, max_user_id=8901)
    deliver(bot_added(-700, T0, user_id=8901))  # the chat now belongs to the adder's org
    updates = [user_added(-700, T0 + 1, 555), title_changed(-700, T0 + 2, "Новое имя"),
               user_removed(-700, T0 + 3, 555), {"update_type": "message_callback",
                                                 "timestamp": T0 + 4, "chat_id": -700}]
    for update in updates:
        assert deliver(update).status_code == 200
        assert deliver(update).status_code == 200  # Max's retry: no second event
    # a message in a group chat is not ours to keep: answered, neither stored nor audited
    chat_message = {"update_type": "message_created", "timestamp": T0 + 5,
                    "message": {"sender": {"user_id": 555, "is_bot": False},
                                "recipient": {"chat_id": -700, "chat_type": "chat"},
                                "timestamp": T0 + 5, "body": {"mid": "m1", "text": "Привет"}}}
    assert deliver(chat_message).status_code == 200
    assert _count(ctx, MaxUpdate) == 5
    events = ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == "max.update")
                         .order_by(AuditEvent.seq)).all()
    summaries = [json.loads(e.summary) for e in events]
    assert [s["update_type"] for s in summaries] == [
        "bot_added", "user_added", "chat_title_changed", "user_removed", "message_callback"]
    assert {s["chat_id"] for s in summaries} == {-700}
    assert {(e.actor_type, e.org_id) for e in events} == {("max", org.id)}

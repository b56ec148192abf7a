"""Stopped bots and dialog messages: bot_stopped silences the bot for that person; a message
written to the bot gets a short help answer, at most once a day per person; messages in
group chats are not kept."""

from __future__ import annotations

import sqlalchemy as sa

from migrator.max import service
from migrator.max.models import MaxDialogUser, MaxUpdate
from migrator.people.invite_models import BotMessage
from migrator.people.invites import queue_bot_message, send_bot_messages


def _poll(runner, ctx):
    result = runner.invoke(args=["max", "poll", "--once"])
    ctx.rollback()
    assert result.exit_code == 0, result.output
    return result.output


def _send(ctx):
    ctx.commit()
    with service.get_client(max_retries=0) as client:
        sent = send_bot_messages(client)
    ctx.rollback()
    return sent


def _dialog(sandbox, uid):
    """The bot's messages in the user's dialog."""
    return [m["body"]["text"] for m in sandbox.user_messages(uid)
            if m["sender"]["is_bot"]]


def test_help_answer_once_a_day_and_nothing_after_stop(sandbox, runner, ctx):
    _poll(runner, ctx)  # the marker: from now on nothing is lost
    uid = sandbox.user("Вопросов")
    sandbox.ctl("POST", f"/users/{uid}/start", {"payload": "unknown-token"})
    sandbox.write_to_bot(uid, "Что это за бот?")
    sandbox.write_to_bot(uid, "Ау?")
    assert "3 update(s)" in _poll(runner, ctx)
    keys = ctx.scalars(sa.select(BotMessage.idem_key).order_by(BotMessage.id)).all()
    ctx.rollback()
    assert [k.split(":")[0] for k in keys] == ["botreply", "bothelp"]  # one help a day
    assert _send(ctx) == 2
    texts = _dialog(sandbox, uid)
    assert len(texts) == 2 and "Migrator" in texts[1] and "координатор" in texts[1]

    # stopped: no more bot messages, not even ones already queued
    sandbox.ctl("POST", f"/users/{uid}/stop")
    _poll(runner, ctx)
    assert ctx.get(MaxDialogUser, uid).stopped
    ctx.rollback()
    queue_bot_message("test:after-stop", uid, "Напоминание")
    assert _send(ctx) == 0
    row = ctx.scalars(sa.select(BotMessage).where(BotMessage.idem_key == "test:after-stop")).one()
    assert row.status == "failed" and "stopped" in row.last_error
    ctx.rollback()
    assert len(_dialog(sandbox, uid)) == 2

    # Start again: the bot may write again
    sandbox.ctl("POST", f"/users/{uid}/start", {"payload": "x"})
    _poll(runner, ctx)
    assert not ctx.get(MaxDialogUser, uid).stopped
    ctx.rollback()


def test_group_chat_messages_are_not_kept(sandbox, runner, ctx):
    _poll(runner, ctx)
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Рабочий чат", owner)["chat_id"]
    sandbox.ctl("POST", f"/chats/{cid}/messages", {"user_id": owner, "text": "Всем привет"})
    _poll(runner, ctx)
    kinds = ctx.scalars(sa.select(MaxUpdate.update_type)).all()
    ctx.rollback()
    assert "message_created" not in kinds
    assert ctx.scalar(sa.select(sa.func.count()).select_from(BotMessage)) == 0
    ctx.rollback()


def test_each_bot_message_is_sent_outside_a_transaction_and_audited_with_its_outcome(
        sandbox, runner, ctx, caplog):
    """The shared limiter is never waited on inside an open transaction (on SQLite it would
    fall back to the in-process limiter, and two runners could exceed the budget together),
    and every call is in the audit trail: one ``max.call`` per message sent."""
    from migrator.audit.models import AuditEvent

    _poll(runner, ctx)  # the marker: from now on nothing is lost
    users = [sandbox.user(f"Получатель{i}") for i in range(3)]
    stopped = sandbox.user("Остановивший")
    for uid in [*users, stopped]:
        sandbox.ctl("POST", f"/users/{uid}/start", {})
    sandbox.ctl("POST", f"/users/{stopped}/stop")
    _poll(runner, ctx)
    _send(ctx)  # the answers to the Start presses
    for i, uid in enumerate([*users, stopped]):
        queue_bot_message(f"batch:{i}", uid, f"Сообщение {i}")
    ctx.commit()
    service.record_calls()  # nothing waiting outside a sender: a no-op
    with caplog.at_level("WARNING", logger="migrator.max"):
        calls_before = ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "max.call"))
        assert _send(ctx) == 3
    assert not [r for r in caplog.records if "open SQLite transaction" in r.getMessage()]
    calls = ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                       .where(AuditEvent.action == "max.call"))
    assert calls - calls_before == 3  # the stopped person got no call
    assert [_dialog(sandbox, uid)[-1] for uid in users] == [f"Сообщение {i}" for i in range(3)]

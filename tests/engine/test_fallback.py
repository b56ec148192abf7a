"""The fallback for people Max will not add, against the sandbox: they are sent the chat's
join link by bot message and e-mail (e-mail only once they stopped the bot), marked
``invited_by_link``, and counted as brought in by the tool once ``user_added`` shows them in
the chat. A chat without a link asks the coordinator for one until a check finds it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from enginetest import deliver, open_items, past_wave, set_status, user_update
from enginetest import member as membership

from migrator.audit.models import AuditEvent
from migrator.db import get_session
from migrator.engine.runner import run_due
from migrator.groups import states
from migrator.groups.service import coverage
from migrator.mail.models import OutboxMessage
from migrator.max import service
from migrator.max.models import MaxChat
from migrator.people.invite_models import BotMessage

T0 = 1_770_000_000_000
LINK = "https://max.ru/join/UchItElYa42"


def _dialog(sandbox, uid) -> list[str]:
    return [m["body"]["text"] for m in sandbox.ctl("GET", f"/users/{uid}/messages")["messages"]
            if m["sender"]["is_bot"]]


def _refuse(sandbox, app, world, n=3):
    """A world where Max refuses its first employee for good after one attempt."""
    app.config.update(MEMBER_RETRY_SECONDS=0, MEMBER_MAX_ATTEMPTS=1)
    org, group, emps, chat_id, admin = world(n=n)
    private = emps[0]
    sandbox.ctl("PATCH", f"/users/{private.max_user_id}", {"allow_add": False})
    sandbox.start(private.max_user_id)  # they pressed Start: the bot may write to them
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    return org, group, emps, chat_id, private


def test_unaddable_person_gets_the_link_joins_and_counts_as_brought_in(
        world, sandbox, app, smtp_server):
    org, group, emps, chat_id, private = _refuse(sandbox, app, world)
    sandbox.set_link(chat_id, LINK)  # the app has not seen the link yet (no update for it)
    run_due()

    member = membership(group, private)
    assert member.state == states.INVITED_BY_LINK
    assert member.reason == "add.participant.privacy"
    chat = get_session().scalars(sa.select(MaxChat).where(MaxChat.chat_id == chat_id)).one()
    assert chat.link == LINK  # fetched from GET /chats/{chatId} and stored
    # by bot message, in their dialog...
    texts = _dialog(sandbox, private.max_user_id)
    assert any(LINK in t and "Вступите в чат" in t for t in texts)
    # ...and by e-mail, once each
    mails = [m for m in smtp_server.wait_for(1) if m["To"] == private.email]
    assert len(mails) == 1
    body = mails[0].get_body(("plain",)).get_content()
    assert LINK in body and "СЭД" in body
    assert get_session().scalar(sa.select(sa.func.count()).select_from(BotMessage).where(
        BotMessage.idem_key.like("joinlink:%"))) == 1
    events = get_session().scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "member.join_link_sent")).all()
    assert len(events) == 1
    assert json.loads(events[0].summary)["channels"] == ["bot", "email"]
    assert open_items("chat_link_missing") == []
    # still not in the chat: their item stays open, they are listed with the link sent
    assert [i.subject_id for i in open_items("member_unaddable")] == [private.id]

    # another run sends nothing twice
    run_due()
    assert len(_dialog(sandbox, private.max_user_id)) == len(texts)
    assert get_session().scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "join_link")) == 1

    # they join through the link: joined, brought in by the tool, nothing flagged
    sandbox.join(chat_id, private.max_user_id)
    deliver(user_update("user_added", private.max_user_id, T0, chat_id))
    joined = membership(group, private)
    assert joined.state == states.JOINED and joined.by_tool
    assert open_items("member_unaddable") == []
    assert coverage(group) == (3, 3)


def test_someone_who_stopped_the_bot_gets_the_link_by_email_only(world, sandbox, app):
    org, group, emps, chat_id, private = _refuse(sandbox, app, world)
    sandbox.set_link(chat_id, LINK)
    sandbox.stop(private.max_user_id)
    deliver(user_update("bot_stopped", private.max_user_id, T0))
    run_due(send_mail=False)

    assert membership(group, private).state == states.INVITED_BY_LINK
    session = get_session()
    assert session.scalar(sa.select(sa.func.count()).select_from(BotMessage).where(
        BotMessage.max_user_id == private.max_user_id,
        BotMessage.idem_key.like("joinlink:%"))) == 0
    mail = session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "join_link")).one()
    assert mail.to_addr == private.email and LINK in mail.body_text


def test_a_chat_without_a_link_asks_the_coordinator_until_one_is_made(
        world, sandbox, app, client, login, make_user):
    org, group, emps, chat_id, private = _refuse(sandbox, app, world)
    run_due(send_mail=False)

    assert membership(group, private).state == states.UNADDABLE
    items = open_items("chat_link_missing")
    assert len(items) == 1 and items[0].subject_type == "chat"
    assert '"count": 1' in items[0].params
    assert get_session().scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "join_link")) == 0

    coordinator = make_user("coordinator", orgs=[org])
    login(client, coordinator)
    page = client.get("/attention").get_data(as_text=True)
    assert "Чаты без ссылки-приглашения" in page and "Ждут ссылку" in page
    assert private.full_name in page  # and the person, with the reason

    # the owner creates a link in Max (no update); the next check of the chat finds it
    sandbox.set_link(chat_id, LINK)
    get_session().commit()
    with service.get_client(max_retries=0) as max_client:
        assert service.refresh_chat(chat_id, max_client) is None
    assert open_items("chat_link_missing") == []
    member = membership(group, private)
    assert member.state == states.INVITED_BY_LINK
    mail = get_session().scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "join_link")).one()
    assert LINK in mail.body_text
    page = client.get("/attention").get_data(as_text=True)
    assert "Чаты без ссылки-приглашения" not in page
    assert "ссылка-приглашение в чат отправлена" in page


def test_a_waiting_person_who_joins_on_their_own_clears_the_request_for_a_link(
        world, sandbox, app):
    org, group, emps, chat_id, private = _refuse(sandbox, app, world)
    run_due(send_mail=False)
    assert len(open_items("chat_link_missing")) == 1
    sandbox.join(chat_id, private.max_user_id)
    deliver(user_update("user_added", private.max_user_id, T0, chat_id))
    joined = membership(group, private)
    assert joined.state == states.JOINED and not joined.by_tool  # not through our link
    assert open_items("chat_link_missing") == []

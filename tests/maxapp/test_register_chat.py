"""«Добавить чат по ID» and ``flask max register-chat``: a chat whose bot_added was missed
(an outage, or the bot added before the webhook existed) is made known by its ID."""

from __future__ import annotations

from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.max.models import MaxChat

FULL = ["read_all_messages", "add_remove_members", "pin_message"]


def _chat(ctx, chat_id):
    chat = ctx.exec(select(MaxChat).where(MaxChat.chat_id == chat_id)).first()
    if chat is not None:
        ctx.expunge(chat)
    ctx.rollback()
    return chat


def _audited(ctx, action):
    rows = ctx.scalars(select(AuditEvent.object_id).where(AuditEvent.action == action)).all()
    ctx.rollback()
    return list(rows)


def test_cli_registers_a_missed_chat(sandbox, runner, ctx, make_org):
    org = make_org(code="school-7")
    ctx.commit()
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Пропущенный чат", owner)["chat_id"]
    sandbox.add_bot(cid, FULL)  # no webhook, nobody polls: the app never hears of it
    assert _chat(ctx, cid) is None
    result = runner.invoke(args=["max", "register-chat", str(cid), "--org", "school-7"])
    assert result.exit_code == 0, result.output
    assert "Registered chat" in result.output
    chat = _chat(ctx, cid)
    assert chat.status == "discovered" and chat.title == "Пропущенный чат"
    assert chat.org_id == org.id and chat.checked_at is not None and chat.bot_is_admin
    assert _audited(ctx, "max.chat_registered") == [str(cid)]
    again = runner.invoke(args=["max", "register-chat", str(cid)])
    assert again.exit_code == 0 and "already known" in again.output
    assert len(_audited(ctx, "max.chat_registered")) == 1


def test_cli_refuses_chats_without_the_bot(sandbox, runner, ctx):
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Без бота", owner)["chat_id"]
    result = runner.invoke(args=["max", "register-chat", str(cid)])
    assert result.exit_code != 0 and "not in this chat" in result.output
    result = runner.invoke(args=["max", "register-chat", "-99999"])
    assert result.exit_code != 0 and "no chat with this ID" in result.output
    sandbox.add_bot(cid, FULL)
    sandbox.ctl("DELETE", f"/chats/{cid}/bot", {})
    result = runner.invoke(args=["max", "register-chat", str(cid)])
    assert result.exit_code != 0
    assert _chat(ctx, cid) is None and _audited(ctx, "max.chat_registered") == []


def test_the_form_for_coordinators_in_scope(sandbox, client, ctx, login, make_user, make_org):
    mine, other = make_org(code="mine"), make_org(code="other")
    coordinator = make_user("coordinator", orgs=[mine])
    ctx.commit()
    login(client, coordinator)
    ctx.rollback()
    page = client.get("/max/chats").get_data(as_text=True)
    ctx.rollback()
    assert "Добавить чат по номеру" in page
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Чат школы", owner)["chat_id"]
    sandbox.add_bot(cid, FULL)

    def post(**data):
        resp = client.post("/max/chats/register", data=data)
        ctx.rollback()
        return resp

    # another organisation's code, or none at all, is refused inline
    resp = post(chat_id=str(cid), org="other")
    assert resp.status_code == 400
    assert "нет организации с таким кодом" in resp.get_data(as_text=True)
    resp = post(chat_id=str(cid))
    assert resp.status_code == 400 and "Укажите код организации" in resp.get_data(as_text=True)
    resp = post(chat_id="not a number", org="mine")
    assert resp.status_code == 400 and 'aria-invalid="true"' in resp.get_data(as_text=True)
    no_bot = sandbox.create_chat("Без бота", owner)["chat_id"]
    resp = post(chat_id=str(no_bot), org="mine")
    assert resp.status_code == 400 and "Бота нет в этом чате" in resp.get_data(as_text=True)
    assert _chat(ctx, cid) is None and _chat(ctx, no_bot) is None

    resp = post(chat_id=str(cid), org="mine")
    assert resp.status_code == 302
    chat = _chat(ctx, cid)
    assert resp.headers["Location"].endswith(f"/max/chats/{chat.id}")
    assert chat.org_id == mine.id and chat.status == "discovered"
    assert "Чат школы" in client.get(f"/max/chats/{chat.id}").get_data(as_text=True)
    ctx.rollback()
    assert other.id != chat.org_id


def test_auditors_cannot_register(sandbox, client, ctx, login, make_user):
    auditor = make_user("auditor")
    ctx.commit()
    login(client, auditor)
    ctx.rollback()
    assert client.post("/max/chats/register", data={"chat_id": "-1"}).status_code == 403
    ctx.rollback()

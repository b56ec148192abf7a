"""The Max chats UI, API, linking and CLI against the real sandbox over HTTP."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from maxapp_support import SECRET, TOKEN, wait_for
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.groups.models import SourceGroup
from migrator.max.models import MaxChat, MaxUpdate
from migrator.waves.models import Setting

FULL = ["read_all_messages", "add_remove_members", "pin_message"]


def _chat(ctx, chat_id):
    chat = ctx.exec(select(MaxChat).where(MaxChat.chat_id == chat_id)).first()
    if chat is not None:
        ctx.expunge(chat)  # a detached copy: reading it later opens no transaction
    ctx.rollback()  # never hold the SQLite write lock while the live server works
    return chat


def _get(client, ctx, url, **kw):
    resp = client.get(url, **kw)
    ctx.rollback()
    return resp


def _subscribe(runner, ctx):
    result = runner.invoke(args=["max", "subscribe"])
    ctx.rollback()
    assert result.exit_code == 0, result.output
    return result


def test_subscribe_registers_the_webhook_with_the_secret(live_server, sandbox, runner, ctx):
    result = _subscribe(runner, ctx)
    subs = sandbox.state.subscriptions
    assert list(subs) == [live_server.url + "/max/webhook"]
    sub = subs[live_server.url + "/max/webhook"]
    assert sub.secret == SECRET
    assert set(sub.update_types) == {"bot_added", "bot_removed", "bot_started", "bot_stopped",
                                     "user_added", "user_removed", "chat_title_changed",
                                     "message_callback", "message_created"}
    assert TOKEN not in result.output and SECRET not in result.output
    status = runner.invoke(args=["max", "status"])
    assert status.exit_code == 0, status.output
    assert "migrator_test_bot" in status.output and "/max/webhook" in status.output
    assert TOKEN not in status.output


def test_adding_the_bot_makes_the_chat_appear_in_the_ui_and_the_api(
        live_server, sandbox, runner, ctx, client, login, make_user, api_token):
    admin = make_user("admin")
    headers = api_token(admin)
    login(client, admin)
    ctx.rollback()
    _subscribe(runner, ctx)
    owner = sandbox.user("Ольга", last_name="Смирнова")
    chat_id = sandbox.create_chat("Школа №5 — учителя", owner)["chat_id"]
    sandbox.add_bot(chat_id, FULL)

    def listed():
        body = _get(client, ctx, "/api/v1/chats?status=discovered", headers=headers).get_json()
        return [c for c in body["chats"] if c["chat_id"] == chat_id]

    (item,) = wait_for(listed, timeout=5)
    assert item["status"] == "discovered" and item["group_keys"] == []
    # the title and the rights come from the API right after the update was stored
    wait_for(lambda: _chat(ctx, chat_id).checked_at is not None, timeout=5)
    (item,) = listed()
    assert item["title"] == "Школа №5 — учителя"
    assert item["bot_is_admin"] is True and item["missing_permissions"] == []
    page = _get(client, ctx, "/max/chats?status=discovered").get_data(as_text=True)
    assert "Школа №5 — учителя" in page and "Ольга Смирнова" in page and "готов" in page
    assert _get(client, ctx, "/api/v1/chats?status=removed", headers=headers).get_json()[
        "chats"] == []
    calls = ctx.scalars(sa.select(AuditEvent.summary).where(AuditEvent.action == "max.call"))
    calls = calls.all()
    ctx.rollback()
    assert any('"/chats/{chatId}/members/me"' in s for s in calls)
    assert all(TOKEN not in s for s in calls)


def test_preflight_lists_missing_rights_and_recheck_updates_them(
        live_server, sandbox, runner, ctx, client, login, make_user):
    admin = make_user("admin")
    login(client, admin)
    ctx.rollback()
    _subscribe(runner, ctx)
    owner = sandbox.user("Owner")
    chat_id = sandbox.create_chat("Без закрепления", owner)["chat_id"]
    sandbox.add_bot(chat_id, ["read_all_messages", "add_remove_members", "write"])
    chat = wait_for(lambda: (c := _chat(ctx, chat_id)) and c.checked_at and c)
    assert chat.missing_permissions == ["pin_message"]
    page = _get(client, ctx, f"/max/chats/{chat.id}").get_data(as_text=True)
    assert "не хватает прав" in page and "закреплять сообщения" in page
    listing = _get(client, ctx, "/max/chats").get_data(as_text=True)
    assert "закреплять сообщения" in listing
    # the owner grants the right in Max; "re-check" fetches it
    sandbox.state.chats[chat_id].members[100_000].permissions.append("pin_message")
    resp = client.post(f"/max/chats/{chat.id}/refresh")
    ctx.rollback()
    assert resp.status_code == 302
    assert _chat(ctx, chat_id).missing_permissions == []
    result = runner.invoke(args=["max", "refresh"])
    ctx.rollback()
    assert result.exit_code == 0 and "Checked 1 chat(s); 0 not ready." in result.output


def test_link_from_the_chat_page_the_group_page_and_the_api(
        live_server, sandbox, runner, ctx, client, login, make_user, make_org, make_group,
        api_token):
    org = make_org()
    g1, g2, g3 = make_group(org, key="g-one"), make_group(org, key="g-two"), make_group(
        org, key="g-three")
    coord = make_user("coordinator", orgs=[org])
    headers = api_token(coord)
    login(client, coord)
    admin = make_user("admin")
    ctx.rollback()
    _subscribe(runner, ctx)
    owner = sandbox.user("Owner")
    c1 = sandbox.create_chat("Чат один", owner)["chat_id"]
    c2 = sandbox.create_chat("Чат два", owner)["chat_id"]
    sandbox.add_bot(c1, FULL)
    sandbox.add_bot(c2, FULL)
    wait_for(lambda: all(_chat(ctx, c) and _chat(ctx, c).checked_at for c in (c1, c2)))
    chat1, chat2 = _chat(ctx, c1), _chat(ctx, c2)
    # unassigned chats are for admins only: the coordinator links through an admin first
    assert _get(client, ctx, f"/max/chats/{chat1.id}").status_code == 404
    from migrator.max.service import link_group

    link_group(ctx.get(SourceGroup, g1.id), ctx.get(MaxChat, chat1.id), admin)
    ctx.commit()
    # chat page form: link a second group of the same organisation
    page = _get(client, ctx, f"/max/chats/{chat1.id}").get_data(as_text=True)
    assert "g-two" in page and "g-one" in page
    resp = client.post(f"/max/chats/{chat1.id}/link", data={"group": "g-two"})
    ctx.rollback()
    assert resp.status_code == 302
    ctx.refresh(g2)
    assert g2.max_chat_id == chat1.id
    ctx.rollback()
    # linking an already linked group elsewhere: an inline error, 409
    chat2_row = ctx.get(MaxChat, chat2.id)
    chat2_row.org_id = org.id
    ctx.commit()
    resp = client.post(f"/max/chats/{chat2.id}/link", data={"group": "g-two"})
    ctx.rollback()
    assert resp.status_code == 409
    assert "уже сопоставлена" in resp.get_data(as_text=True)
    # the group page panel: link g-three to chat 2, then unlink
    page = _get(client, ctx, "/groups/g-three").get_data(as_text=True)
    assert "Чат два" in page and 'id="max-link"' in page
    resp = client.post("/max/groups/g-three/link", data={"chat": str(chat2.id)})
    ctx.rollback()
    assert resp.status_code == 302
    ctx.refresh(g3)
    assert g3.max_chat_id == chat2.id
    ctx.rollback()
    # unlinking asks first: a one-click POST changes nothing, the confirmed one unlinks
    assert client.post("/max/groups/g-three/unlink").status_code == 400
    ctx.rollback()
    ctx.refresh(g3)
    assert g3.max_chat_id == chat2.id
    ctx.rollback()
    assert client.post("/max/groups/g-three/unlink",
                       data={"confirmed": "1"}).status_code == 302
    ctx.rollback()
    ctx.refresh(g3)
    assert g3.max_chat_id is None and _chat(ctx, c2).status == "discovered"
    # a conflict on the group page shows inline after the redirect
    client.post("/max/groups/g-two/link", data={"chat": str(chat2.id)})
    ctx.rollback()
    page = _get(client, ctx, "/groups/g-two").get_data(as_text=True)
    assert "уже сопоставлена" in page and "Чат один" in page  # the error, once
    assert "уже сопоставлена" not in _get(client, ctx, "/groups/g-two").get_data(as_text=True)
    # the API: 200, idempotent, 409 on a conflict, 400 malformed, 404 unknown
    resp = client.post("/api/v1/groups/g-three/link", json={"chat_id": c2}, headers=headers)
    ctx.rollback()
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["chat"]["group_keys"] == ["g-three"]
    assert resp.get_json()["chat"]["status"] == "linked"
    again = client.post("/api/v1/groups/g-three/link", json={"chat_id": c2}, headers=headers)
    assert again.status_code == 200
    conflict = client.post("/api/v1/groups/g-three/link", json={"chat_id": c1},
                           headers=headers)
    assert conflict.status_code == 409
    assert conflict.get_json()["error"] == "group_already_linked"
    for body in ({"chat_id": "x"}, {}, [c1], {"chat_id": True}):
        assert client.post("/api/v1/groups/g-three/link", json=body,
                           headers=headers).status_code == 400
    assert client.post("/api/v1/groups/nope/link", json={"chat_id": c1},
                       headers=headers).status_code == 404
    assert client.post("/api/v1/groups/g-one/link", json={"chat_id": 123456},
                       headers=headers).status_code == 404
    ctx.rollback()
    actions = ctx.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action.in_(["group.link", "group.unlink"])).order_by(AuditEvent.seq)).all()
    ctx.rollback()
    assert actions == ["group.link", "group.link", "group.link", "group.unlink", "group.link"]


def test_a_removed_chat_cannot_be_linked_and_flags_its_groups(
        live_server, sandbox, runner, ctx, client, make_user, make_org, make_group, api_token):
    org = make_org()
    group = make_group(org, key="g-rm")
    other = make_group(org, key="g-rm2")
    headers = api_token(make_user("admin"))
    ctx.rollback()
    _subscribe(runner, ctx)
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Будет удалён", owner)["chat_id"]
    sandbox.add_bot(cid, FULL)
    wait_for(lambda: _chat(ctx, cid))
    assert client.post("/api/v1/groups/g-rm/link", json={"chat_id": cid},
                       headers=headers).status_code == 200
    ctx.rollback()
    sandbox.ctl("DELETE", f"/chats/{cid}/bot")
    wait_for(lambda: _chat(ctx, cid).status == "removed")
    ctx.refresh(group)
    assert group.needs_attention is True
    ctx.rollback()
    resp = client.post("/api/v1/groups/g-rm2/link", json={"chat_id": cid}, headers=headers)
    assert resp.status_code == 409 and resp.get_json()["error"] == "chat_removed"
    ctx.rollback()
    ctx.refresh(other)
    assert other.max_chat_id is None


def test_a_coordinator_sees_and_links_only_their_organisations(
        live_server, sandbox, runner, ctx, client, login, make_user, make_org, make_group,
        make_employee, api_token):
    org_a, org_b = make_org(code="A"), make_org(code="B")
    make_employee(org_a, max_user_id=70001)
    make_employee(org_b, max_user_id=70002)
    make_group(org_a, key="grp-a")
    make_group(org_b, key="grp-b")
    coord_a = make_user("coordinator", orgs=[org_a])
    headers = api_token(coord_a)
    login(client, coord_a)
    ctx.rollback()
    _subscribe(runner, ctx)
    ua = sandbox.user("Алла", user_id=70001)
    ub = sandbox.user("Борис", user_id=70002)
    stranger = sandbox.user("Никто")
    ca = sandbox.create_chat("Чат A", ua)["chat_id"]
    cb = sandbox.create_chat("Чат B", ub)["chat_id"]
    cx = sandbox.create_chat("Чат без хозяина", stranger)["chat_id"]
    for cid in (ca, cb, cx):
        sandbox.add_bot(cid, FULL)
    wait_for(lambda: all(_chat(ctx, c) for c in (ca, cb, cx)))
    chat_a, chat_b, chat_x = _chat(ctx, ca), _chat(ctx, cb), _chat(ctx, cx)
    assert (chat_a.org_id, chat_b.org_id, chat_x.org_id) == (org_a.id, org_b.id, None)
    ids = {c["chat_id"] for c in _get(client, ctx, "/api/v1/chats",
                                      headers=headers).get_json()["chats"]}
    assert ids == {ca}
    page = _get(client, ctx, "/max/chats").get_data(as_text=True)
    assert "Чат A" in page and "Чат B" not in page and "Чат без хозяина" not in page
    assert _get(client, ctx, f"/max/chats/{chat_b.id}").status_code == 404
    assert _get(client, ctx, f"/max/chats/{chat_x.id}").status_code == 404
    for key, cid in (("grp-a", cb), ("grp-a", cx), ("grp-b", ca)):
        resp = client.post(f"/api/v1/groups/{key}/link", json={"chat_id": cid},
                           headers=headers)
        assert resp.status_code == 404, (key, cid)
    assert client.post(f"/max/chats/{chat_a.id}/link", data={"group": "grp-b"}).status_code \
        == 404
    assert client.post("/max/groups/grp-a/link", data={"chat": str(chat_b.id)}).status_code \
        == 404
    page = _get(client, ctx, f"/max/chats/{chat_a.id}").get_data(as_text=True)
    assert "grp-a" in page and "grp-b" not in page
    resp = client.post("/api/v1/groups/grp-a/link", json={"chat_id": ca}, headers=headers)
    assert resp.status_code == 200
    ctx.rollback()
    # an admin sees all three, the unassigned one too
    admin_headers = api_token(make_user("admin"))
    ctx.rollback()
    # over HTTP: its own app context, so only the token decides who is asking
    body = httpx.get(live_server.url + "/api/v1/chats", headers=admin_headers).json()
    ids = {c["chat_id"] for c in body["chats"]}
    assert ids == {ca, cb, cx}


def test_a_chat_serves_one_organisation_subtree(ctx, make_org, make_group, make_user):
    from migrator.max.service import LinkConflict, link_group

    region = make_org(code="R")
    dep = make_org(code="D", parent=region)
    school = make_org(code="S", parent=dep)
    other = make_org(code="O", parent=region)
    admin = make_user("admin")
    chat = MaxChat(chat_id=-42, title="t")
    ctx.add(chat)
    ctx.commit()
    link_group(make_group(dep), chat, admin)
    assert chat.org_id == dep.id and chat.status == "linked"
    link_group(make_group(school), chat, admin)  # inside the subtree
    try:
        link_group(make_group(other), chat, admin)
    except LinkConflict as exc:
        assert exc.code == "other_organisation"
    else:
        raise AssertionError("a group of another organisation was linked")
    ctx.rollback()


def test_poll_once_processes_queued_updates_without_a_webhook(
        sandbox, runner, ctx, live_server):
    # the very first run has no marker: Max gives only the last waiting update
    early = sandbox.user("Owner")
    sandbox.create_chat("Пропущенный", early)
    for name in ("Первый", "Второй"):
        uid = sandbox.user(name)
        sandbox.ctl("POST", f"/users/{uid}/start", {"payload": "x"})
    result = runner.invoke(args=["max", "poll", "--once"])
    assert result.exit_code == 0, result.output
    assert "Done: 1 update(s)." in result.output
    # from then on the stored marker loses nothing
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Через опрос", owner)["chat_id"]
    sandbox.add_bot(cid, ["write"])
    sandbox.ctl("POST", f"/chats/{cid}/members", {"user_id": sandbox.user("Участник")})
    result = runner.invoke(args=["max", "poll", "--once"])
    ctx.rollback()
    assert result.exit_code == 0, result.output
    assert "Done: 2 update(s)." in result.output
    chat = _chat(ctx, cid)
    assert chat.title == "Через опрос" and chat.missing_permissions == [
        "read_all_messages", "add_remove_members", "pin_message"]
    n = ctx.scalar(sa.select(sa.func.count()).select_from(MaxUpdate))
    ctx.rollback()
    assert n == 3
    assert ctx.get(Setting, "max.poll_marker") is not None
    ctx.rollback()
    # nothing left: a second run processes nothing
    result = runner.invoke(args=["max", "poll", "--once"])
    assert "Done: 0 update(s)." in result.output
    # two runs in a row with updates waiting lose none
    sandbox.ctl("POST", f"/chats/{cid}/title", {"title": "Переименован"})
    sandbox.ctl("POST", f"/chats/{cid}/members", {"user_id": sandbox.user("Ещё")})
    first = runner.invoke(args=["max", "poll", "--once"])
    second = runner.invoke(args=["max", "poll", "--once"])
    assert "Done: 2 update(s)." in first.output and "Done: 0 update(s)." in second.output
    kinds = ctx.scalars(sa.select(MaxUpdate.update_type).order_by(MaxUpdate.id)).all()
    ctx.rollback()
    assert kinds[-2:] == ["chat_title_changed", "user_added"]
    # with a webhook subscribed, polling is refused unless forced
    _subscribe(runner, ctx)
    result = runner.invoke(args=["max", "poll", "--once"])
    assert result.exit_code != 0 and "webhook subscription exists" in result.output
    # forced, the request goes out, and Max itself refuses polling beside a webhook
    result = runner.invoke(args=["max", "poll", "--once", "--force"])
    ctx.rollback()
    assert result.exit_code != 0 and "long polling is off" in result.output


def test_duplicated_and_reordered_deliveries_from_the_sandbox(live_server, sandbox, runner, ctx):
    _subscribe(runner, ctx)
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Дубли", owner)["chat_id"]
    sandbox.ctl("POST", "/faults", {"duplicate_delivery": {"next": 1},
                                    "reorder_delivery": {"next": 1, "hold_ms": 300}})
    sandbox.add_bot(cid, FULL)  # held back 300 ms, then delivered twice
    sandbox.ctl("POST", f"/chats/{cid}/title", {"title": "Новое имя"})  # overtakes it

    def delivered():
        log = sandbox.ctl("GET", "/deliveries")
        ok = [d for d in log["deliveries"] if d["status"] == 200]
        return log["pending"] == 0 and len(ok) >= 3

    wait_for(delivered)
    wait_for(lambda: _chat(ctx, cid).checked_at is not None)
    n = ctx.scalar(sa.select(sa.func.count()).select_from(MaxUpdate))
    ctx.rollback()
    assert n == 2
    chat = _chat(ctx, cid)
    assert (chat.status, chat.title, chat.missing_permissions) == ("discovered", "Новое имя", [])


def test_a_chat_whose_first_check_failed_is_checked_by_process_pending(
        sandbox, runner, ctx, deliver):
    owner = sandbox.user("Owner")
    cid = sandbox.create_chat("Проверка позже", owner)["chat_id"]
    update = sandbox.add_bot(cid, ["write"])  # no webhook: we deliver it ourselves
    sandbox.ctl("POST", "/faults", {"fail_503": {"next": 1}})
    assert deliver(update).status_code == 200  # answered although Max failed meanwhile
    chat = _chat(ctx, cid)
    assert chat.status == "discovered" and chat.checked_at is None
    result = runner.invoke(args=["max", "process-pending"])
    ctx.rollback()
    assert result.exit_code == 0 and "Chats re-checked: 1" in result.output, result.output
    chat = _chat(ctx, cid)
    assert chat.title == "Проверка позже" and chat.missing_permissions == [
        "read_all_messages", "add_remove_members", "pin_message"]

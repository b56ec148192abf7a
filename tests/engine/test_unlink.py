"""Unlinking an employee's Max account against the sandbox: the account leaves exactly the
chats the tool added it to, crash-safe and once; the identity reviews close; a rebind
invites the employee again and their own account gets back into the chats; keeping a
questioned link; the pages (reason, CSRF, scope) and the API; one Max account linked to
two employee records."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from enginetest import Killed, dying_on_remove, link, linked_chat_row, past_wave, set_status

from migrator.attention.models import AttentionItem
from migrator.audit.models import AuditEvent
from migrator.db import get_session, utcnow
from migrator.engine import unlink
from migrator.engine.maxclient import client_factory
from migrator.engine.models import IdentityUnlink, Step, UnlinkRemoval
from migrator.engine.runner import run_due
from migrator.groups import states
from migrator.groups.models import GroupMember
from migrator.mail.models import OutboxMessage
from migrator.max.models import MaxChat, MaxChatMember
from migrator.max.updates import _memberships_follow
from migrator.people import identity
from migrator.people.invites import LINK_TOKEN_RE, handle_bot_started, issue_invitations
from migrator.people.models import Employee, InviteToken


@pytest.fixture
def world(sandbox, ctx, make_org, make_employee, make_group, make_user):
    """An employee whose link went to someone else's account («Чужой»): the tool added that
    account to chat 1; in chat 2 it joined on its own; a colleague was added to chat 1 too.
    The link was questioned (identity_conflict and name_mismatch)."""
    org = make_org()
    emp = make_employee(org, full_name="Иванов Иван Иванович",
                        max_user_id=sandbox.user("Чужой"))
    mate = make_employee(org, max_user_id=sandbox.user("Коллега"))
    g1 = make_group(org, members=[emp, mate])
    g2 = make_group(org, members=[emp])
    c1, c2 = sandbox.chat_with_bot("Учителя"), sandbox.chat_with_bot("Родители")
    chat1, chat2 = linked_chat_row(c1, org, "Учителя"), linked_chat_row(c2, org, "Родители")
    link(g1, chat1)
    link(g2, chat2)
    sandbox.join(c2, emp.max_user_id)  # on its own, before the tool
    ctx.add(MaxChatMember(chat_id=chat2.id, max_user_id=emp.max_user_id, is_present=True,
                          last_event_ts=1))
    ctx.commit()
    admin = make_user("admin")
    past_wave([g1, g2], admin)
    for g in (g1, g2):
        set_status(g, "invite", "skipped")
    run_due(send_mail=False)
    identity.used_by_another(emp, emp.max_user_id, 777, "Иванов", None)
    identity.check_name(emp, emp.max_user_id, "Чужой")
    ctx.commit()
    assert _state(g1, emp) == "added" and _state(g2, emp) == "joined"
    assert emp.max_user_id in sandbox.members(c1) and emp.max_user_id in sandbox.members(c2)
    return {"org": org, "emp": emp, "mate": mate, "g1": g1, "g2": g2, "c1": c1, "c2": c2,
            "account": emp.max_user_id, "admin": admin}


def _state(group, emp) -> str:
    session = get_session()
    session.expire_all()
    return session.get(GroupMember, (group.id, emp.id)).state


def _deletes(sandbox, chat_id) -> list[dict]:
    return sandbox.requests("DELETE", f"/chats/{chat_id}/members")


def _open_items(emp) -> list[str]:
    return sorted(get_session().scalars(sa.select(AttentionItem.code).where(
        AttentionItem.subject_type == "member", AttentionItem.subject_id == emp.id,
        AttentionItem.resolved_at.is_(None))).all())


def _actions() -> list[str]:
    return list(get_session().scalars(sa.select(AuditEvent.action)).all())


def test_unlink_removes_the_account_only_where_the_tool_added_it(world, sandbox, app):
    w = world
    emp = w["emp"]
    assert _open_items(emp) == ["identity_conflict", "name_mismatch"]
    row = unlink.request_unlink(emp, w["admin"], "чужая учётная запись")
    get_session().commit()
    session = get_session()
    session.expire_all()
    assert session.get(Employee, emp.id).max_user_id is None
    assert _open_items(emp) == []  # the reviews are closed by the decision
    assert [r.chat_id for r in session.scalars(sa.select(UnlinkRemoval))] == [w["c1"]]
    run_due(send_mail=False)
    assert w["account"] not in sandbox.members(w["c1"])
    assert w["account"] in sandbox.members(w["c2"])  # joined on its own: untouched
    assert w["mate"].max_user_id in sandbox.members(w["c1"])
    assert _state(w["g1"], emp) == "left"
    assert session.get(GroupMember, (w["g1"].id, emp.id)).reason == states.UNLINKED
    # joined on its own: the account stays, the employee counts as out until they link
    assert _state(w["g2"], emp) == "left"
    session.expire_all()
    row = session.get(IdentityUnlink, row.id)
    assert (row.status, row.removed, row.absent, row.kept) == ("done", 1, 0, 0)
    actions = _actions()
    assert actions.count("identity.unlinked") == 1 and actions.count("member.removed") == 1
    assert actions.count("identity.unlink_done") == 1
    event = session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "identity.unlinked")).one()
    assert "чужая учётная запись" in str(event.summary)
    assert len(_deletes(sandbox, w["c1"])) == 1
    # a re-run calls nothing; a second unlink is refused (nothing linked)
    calls = len(sandbox.requests())
    run_due(send_mail=False)
    assert [r for r in sandbox.requests()[calls:] if "/members" in r["path"]] == []
    with pytest.raises(unlink.UnlinkRefused) as refused:
        unlink.request_unlink(session.get(Employee, emp.id), w["admin"], "ещё раз")
    assert refused.value.code == "conflict"



def test_a_crash_between_intent_and_outcome_removes_once(world, sandbox, app):
    w = world
    real = client_factory()

    dying_factory = dying_on_remove(real)

    row = unlink.request_unlink(w["emp"], w["admin"], "чужая")
    get_session().commit()
    with pytest.raises(Killed):
        unlink.process_due("dead-runner", dying_factory)
    session = get_session()
    session.rollback()
    session.expire_all()
    removal = session.get(UnlinkRemoval, (row.id, linked_chat_id(w)))
    assert removal.status == "removing"  # the intent was committed, the outcome never was
    assert session.get(IdentityUnlink, row.id).status == "running"
    assert w["account"] not in sandbox.members(w["c1"])
    session.execute(sa.update(IdentityUnlink).values(claimed_until=utcnow() - timedelta(1)))
    session.commit()
    run_due(send_mail=False)
    session.expire_all()
    assert len(_deletes(sandbox, w["c1"])) == 1  # once
    row = session.get(IdentityUnlink, row.id)
    assert (row.status, row.removed) == ("done", 1)
    assert _state(w["g1"], w["emp"]) == "left"


def linked_chat_id(w) -> int:
    return get_session().scalars(sa.select(MaxChat.id).where(MaxChat.chat_id == w["c1"])).one()


def test_rebind_invites_again_and_the_own_account_gets_back(world, sandbox, app):
    w = world
    emp = w["emp"]
    old = get_session().scalars(sa.select(InviteToken).where(
        InviteToken.employee_id == emp.id)).all()
    unlink.request_unlink(emp, w["admin"], "переслал письмо", rebind=True)
    get_session().commit()
    session = get_session()
    mail = session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.idem_key.like("rebind:%"))).one()
    assert mail.to_addr == emp.email and mail.kind == "invite"
    assert "identity.rebind" in _actions()
    run_due(send_mail=False)
    assert w["account"] not in sandbox.members(w["c1"])
    # the rightful person presses the new link with their own account
    token = LINK_TOKEN_RE.search(mail.body_text).group(1)
    own = sandbox.user("Иванов")
    assert handle_bot_started(token, own, "Иван Иванов") == "linked"
    session.commit()
    assert old == [] or all(t.used_at or t.expires_at <= utcnow() for t in old)
    # left because of the unlinked account: waiting to be added again, in both chats
    assert _state(w["g1"], emp) == "linked" and _state(w["g2"], emp) == "linked"
    for g in (w["g1"], w["g2"]):
        set_status(g, "add_members", "due")
    run_due(send_mail=False)
    assert own in sandbox.members(w["c1"]) and own in sandbox.members(w["c2"])
    assert _state(w["g1"], emp) == "added" and _state(w["g2"], emp) == "added"


def test_keep_resolves_the_reviews(world, app):
    w = world
    with pytest.raises(identity.KeepRefused):
        identity.keep_link(w["emp"], " ", w["admin"])
    assert identity.keep_link(w["emp"], "проверено по телефону", w["admin"]) == 2
    get_session().commit()
    assert _open_items(w["emp"]) == []
    assert "identity.kept" in _actions()
    assert get_session().get(Employee, w["emp"].id).max_user_id == w["account"]
    with pytest.raises(identity.KeepRefused) as refused:
        identity.keep_link(w["emp"], "ещё", w["admin"])
    assert refused.value.code == "conflict"


def test_pages(world, sandbox, app, make_user, make_org, login):
    w = world
    emp = w["emp"]
    coordinator = make_user("coordinator", orgs=[w["org"]])
    outsider = make_user("coordinator", orgs=[make_org(code="X")])
    auditor = make_user("auditor")
    client = login(app.test_client(), coordinator)
    html = client.get(f"/employees/{emp.id}").get_data(as_text=True)
    assert f"/employees/{emp.id}/unlink" in html and f"/employees/{emp.id}/keep" in html
    attention = client.get("/attention").get_data(as_text=True)
    assert f"/employees/{emp.id}/keep" in attention
    assert f"/employees/{emp.id}/unlink" in attention
    form = client.get(f"/employees/{emp.id}/unlink")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="reason"' in html and "Учителя" in html
    refused = client.post(f"/employees/{emp.id}/unlink", data={"reason": " ",
                                                                "action": "unlink"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Укажите причину." in html
    assert 'aria-invalid="true"' in html and "reason-error" in html
    assert get_session().get(Employee, emp.id).max_user_id == w["account"]
    # another organisation's coordinator: the employee does not exist for them
    other = login(app.test_client(), outsider)
    assert other.get(f"/employees/{emp.id}/unlink").status_code == 404
    assert other.post(f"/employees/{emp.id}/unlink",
                      data={"reason": "x", "action": "unlink"}).status_code == 404
    assert other.post(f"/employees/{emp.id}/keep", data={"reason": "x"}).status_code == 404
    assert login(app.test_client(), auditor).post(
        f"/employees/{emp.id}/unlink", data={"reason": "x"}).status_code == 403
    # keep, from the attention list (back there afterwards)
    resp = client.post(f"/employees/{emp.id}/keep",
                       data={"reason": "проверено", "next": "/attention"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/attention")
    assert _open_items(emp) == []
    done = client.post(f"/employees/{emp.id}/unlink",
                       data={"reason": "уволился, аккаунт чужой", "action": "rebind"})
    assert done.status_code == 302
    session = get_session()
    session.expire_all()
    assert session.get(Employee, emp.id).max_user_id is None
    html = client.get(f"/employees/{emp.id}").get_data(as_text=True)
    assert "уволился, аккаунт чужой" in html
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.idem_key.like("rebind:%"))) == 1


def test_pages_need_the_csrf_token(world, app, login):
    w = world
    client = login(app.test_client(), w["admin"])
    app.config["WTF_CSRF_ENABLED"] = True
    resp = client.post(f"/employees/{w['emp'].id}/unlink",
                       data={"reason": "x", "action": "unlink"})
    assert resp.status_code == 400
    resp = client.post(f"/employees/{w['emp'].id}/keep", data={"reason": "x"})
    assert resp.status_code == 400
    assert get_session().get(Employee, w["emp"].id).max_user_id == w["account"]
    assert _open_items(w["emp"]) == ["identity_conflict", "name_mismatch"]


def test_api(world, sandbox, app, make_user, make_org, api_token):
    w = world
    client = app.test_client()
    url = f"/api/v1/employees/{w['emp'].id}/unlink"
    coord_h = api_token(make_user("coordinator", orgs=[w["org"]]))
    out_h = api_token(make_user("coordinator", orgs=[make_org(code="X")]))
    assert client.post(url, json={"reason": "x"}).status_code == 401
    resp = client.post(url, json={}, headers=coord_h)
    assert resp.status_code == 400 and resp.json["details"]["reason"]
    assert client.post(url, json={"reason": "x"}, headers=out_h).status_code == 404
    resp = client.post(url, json={"reason": "чужая", "rebind": True}, headers=coord_h)
    assert resp.status_code == 202
    assert resp.json["action"] == "rebind" and resp.json["status"] == "pending"
    assert resp.json["max_user_id"] == w["account"]
    resp = client.post(url, json={"reason": "ещё"}, headers=coord_h)
    assert resp.status_code == 409
    doc = client.get("/api/v1/openapi.json").json
    assert "post" in doc["paths"]["/employees/{id}/unlink"]
    assert "Unlink" in doc["components"]["schemas"]


def test_two_records_one_account(sandbox, app, ctx, make_org, make_employee, make_group,
                                 make_user):
    """One person employed in two organisations: each record's own invitation links the
    same Max account; the account is added to both groups' chats; unlinking one record
    keeps the account in a chat the other record still needs."""
    a, b = make_org(code="A"), make_org(code="B")
    first = make_employee(a, email="ivanov@a.example.org", full_name="Иванов Иван")
    second = make_employee(b, email="ivanov@b.example.org", full_name="Иванов Иван")
    ga, gb = make_group(a, members=[first]), make_group(b, members=[second])
    issue_invitations(ga)
    issue_invitations(gb)
    ctx.commit()
    mails = {m.to_addr: m for m in ctx.scalars(sa.select(OutboxMessage))}
    account = sandbox.user("Иванов")
    for emp in (first, second):
        token = LINK_TOKEN_RE.search(mails[emp.email].body_text).group(1)
        assert handle_bot_started(token, account, "Иван Иванов") == "linked"
        ctx.commit()
    ctx.expire_all()
    assert ctx.get(Employee, first.id).max_user_id == account
    assert ctx.get(Employee, second.id).max_user_id == account
    # both groups in one chat: one add call for the account, both memberships follow
    chat_id = sandbox.chat_with_bot("Общий")
    chat = linked_chat_row(chat_id, a, "Общий")
    link(ga, chat)
    link(gb, chat)
    admin = make_user("admin")
    past_wave([ga, gb], admin)
    for g in (ga, gb):
        set_status(g, "invite", "skipped")
    run_due(send_mail=False)
    assert account in sandbox.members(chat_id)
    assert _state(ga, first) in states.IN_CHAT and _state(gb, second) in states.IN_CHAT
    # user_removed updates reach both records' memberships
    _memberships_follow(chat, account, False)
    ctx.commit()
    assert _state(ga, first) == "left" and _state(gb, second) == "left"
    _memberships_follow(chat, account, True)
    ctx.commit()
    assert _state(ga, first) == "joined" and _state(gb, second) == "joined"
    for emp, g in ((first, ga), (second, gb)):
        m = ctx.get(GroupMember, (g.id, emp.id))
        states.move(m, states.LEFT)
        states.move(m, states.LINKED)
        states.move(m, states.ADDING)
        states.move(m, states.ADDED)
    ctx.commit()
    # unlinking the first record: the second still needs the account in the chat
    unlink.request_unlink(ctx.get(Employee, first.id), admin, "проверка")
    ctx.commit()
    run_due(send_mail=False)
    assert account in sandbox.members(chat_id)
    assert _deletes(sandbox, chat_id) == []
    row = ctx.scalars(sa.select(IdentityUnlink)).one()
    assert (row.status, row.kept) == ("done", 1)
    assert _state(ga, first) == "left" and _state(gb, second) == "added"
    assert ctx.get(Employee, second.id).max_user_id == account


def test_an_add_call_in_flight_is_waited_for(world, sandbox, app, ctx, make_employee):
    """The employee's add call is in flight in a runner: the removal waits for its lease."""
    w = world
    emp = w["emp"]
    member = ctx.get(GroupMember, (w["g1"].id, emp.id))
    member.state, member.by_tool = states.ADDING, False  # the call went out, no answer yet
    ctx.add(member)

    add = ctx.scalars(sa.select(Step).where(Step.group_id == w["g1"].id,
                                            Step.kind == "add_members")).one()
    add.claimed_by, add.claimed_until = "other-runner", utcnow() + timedelta(minutes=5)
    ctx.add(add)
    ctx.commit()
    row = unlink.request_unlink(emp, w["admin"], "чужая")
    ctx.commit()
    assert unlink.process_due("me", client_factory()) == 0
    ctx.expire_all()
    assert ctx.get(IdentityUnlink, row.id).status == "pending"
    assert _deletes(sandbox, w["c1"]) == []
    assert _state(w["g1"], emp) == "adding"
    # the runner is done (its lease is over): the account leaves, the membership waits again
    add = ctx.get(Step, add.id)
    add.claimed_by = add.claimed_until = None
    ctx.add(add)
    ctx.execute(sa.update(IdentityUnlink).values(next_attempt_at=utcnow()))
    ctx.commit()
    assert unlink.process_due("me", client_factory()) == 1
    assert w["account"] not in sandbox.members(w["c1"])
    assert _state(w["g1"], emp) == "not_linked"

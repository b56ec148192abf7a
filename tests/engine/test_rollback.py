"""Undoing a group's move against the Max sandbox: after the end state only the owner and the
people the tool did not bring in stay in the chat, the pin is gone, the group unlinked, its
remaining steps skipped «откат»; re-runs and a crash between intent and outcome remove
nobody twice; coordinators are refused after cutover; the CLI, the page and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from enginetest import Killed, dying_on_remove, link, linked_chat_row, past_wave, set_status, step

from migrator.audit.models import AuditEvent
from migrator.db import get_session, utcnow
from migrator.engine import rollback
from migrator.engine.maxclient import client_factory
from migrator.engine.models import GroupRollback, RollbackMember, Step
from migrator.engine.runner import run_due
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChatMember


@pytest.fixture
def end_state(sandbox, ctx, make_org, make_employee, make_group, make_user):
    """A group after its move: two members added by the tool, one who joined through the
    join link the tool sent, one who joined on their own, one added by someone else, a
    stranger in the chat, the owner; the announcement pinned."""
    org = make_org(head_email="head@example.org")
    tool = [make_employee(org, max_user_id=sandbox.user(f"Добавленный{i}")) for i in range(2)]
    by_link = make_employee(org, max_user_id=sandbox.user("ПоСсылке"))
    self_joined = make_employee(org, max_user_id=sandbox.user("Сам"))
    by_other = make_employee(org, max_user_id=sandbox.user("ДобавленКоллегой"))
    group = make_group(org, members=[*tool, by_link, self_joined, by_other])
    chat_id = sandbox.chat_with_bot("Учителя")
    owner = next(m["user_id"] for m in sandbox.chat(chat_id)["members"] if m["is_owner"])
    stranger = sandbox.user("Посторонний")
    chat = linked_chat_row(chat_id, org)
    link(group, chat)
    # people in the chat without the tool: the app learns it from user_added updates
    sandbox.join(chat_id, self_joined.max_user_id)
    sandbox.join(chat_id, by_other.max_user_id, inviter_id=owner)
    sandbox.join(chat_id, stranger, inviter_id=owner)
    for emp in (self_joined, by_other):
        ctx.add(MaxChatMember(chat_id=chat.id, max_user_id=emp.max_user_id, is_present=True,
                              last_event_ts=1))
    # the fallback: Max would not add this person, the tool sent the chat's join link
    member = ctx.get(GroupMember, (group.id, by_link.id))
    member.state = states.INVITED_BY_LINK
    ctx.add(member)
    ctx.commit()
    admin = make_user("admin")
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    run_due(send_mail=False)
    sandbox.join(chat_id, by_link.max_user_id)
    states.move(ctx.get(GroupMember, (group.id, by_link.id)), states.JOINED)  # user_added
    ctx.commit()
    assert step(group, "announce").status == "waiting"
    assert sandbox.chat(chat_id)["pinned_message_id"]
    return {"org": org, "group": group, "chat_id": chat_id, "owner": owner, "admin": admin,
            "tool": tool, "by_link": by_link, "self_joined": self_joined,
            "by_other": by_other, "stranger": stranger}


def _state(group, emp) -> str:
    session = get_session()
    session.expire_all()
    return session.get(GroupMember, (group.id, emp.id)).state


def _deletes(sandbox, chat_id, user_id=None) -> list[dict]:
    return [r for r in sandbox.requests("DELETE", f"/chats/{chat_id}/members")
            if user_id is None or f"user_id={user_id}" in r.get("query", r["path"])]


def _undo(world, user=None, reason="перенос отменён"):
    rb = rollback.request_rollback(world["group"], user or world["admin"], reason)
    get_session().commit()
    return rb


def test_rollback_after_the_end_state(end_state, sandbox, app):
    w = end_state
    group, chat_id = w["group"], w["chat_id"]
    before = set(sandbox.members(chat_id))
    brought_in = {e.max_user_id for e in (*w["tool"], w["by_link"])}
    assert brought_in <= before
    _undo(w)
    run_due(send_mail=False)
    assert set(sandbox.members(chat_id)) == before - brought_in
    assert {w["owner"], w["stranger"], w["self_joined"].max_user_id,
            w["by_other"].max_user_id} <= set(sandbox.members(chat_id))
    assert sandbox.chat(chat_id)["pinned_message_id"] is None
    session = get_session()
    session.expire_all()
    group = session.get(SourceGroup, group.id)
    assert group.max_chat_id is None and group.wave_id is None
    for s in session.exec(sa.select(Step).where(Step.group_id == group.id)).scalars():
        assert s.status in ("succeeded", "skipped"), s
    for kind in ("announce", "parallel_run", "cutover"):
        assert step(group, kind).status == "skipped" and step(group, kind).note == "откат"
    for emp in (*w["tool"], w["by_link"]):
        assert _state(group, emp) == "left"
    assert _state(group, w["self_joined"]) == "joined"
    assert _state(group, w["by_other"]) == "joined"
    rb = rollback.latest(group)
    assert (rb.status, rb.removed, rb.absent, rb.kept, rb.unpinned) == ("done", 3, 0, 0, True)
    # the audit trail: one event per side effect
    actions = session.scalars(sa.select(AuditEvent.action)).all()
    assert actions.count("member.removed") == 3
    assert actions.count("chat.unpin") == 1 and actions.count("group.unlink") == 1
    assert actions.count("group.rollback_requested") == 1
    assert actions.count("group.rollback_done") == 1
    assert len(_deletes(sandbox, chat_id)) == 3
    # a re-run changes nothing and calls nothing
    calls = len(sandbox.requests())
    run_due(send_mail=False)
    assert [r for r in sandbox.requests()[calls:] if f"/chats/{chat_id}" in r["path"]] == []
    with pytest.raises(rollback.RollbackRefused):
        rollback.request_rollback(group, w["admin"], "ещё раз")



def test_a_crash_between_intent_and_outcome_removes_nobody_twice(end_state, sandbox, app):
    w = end_state
    chat_id = w["chat_id"]
    victim = min(e.max_user_id for e in (*w["tool"], w["by_link"]))
    real = client_factory()

    dying_factory = dying_on_remove(real)

    rb = _undo(w)
    with pytest.raises(Killed):
        rollback.process_due("dead-runner", dying_factory)
    session = get_session()
    session.rollback()
    session.expire_all()
    row = session.get(RollbackMember, (rb.id, next(e.id for e in (*w["tool"], w["by_link"])
                                                   if e.max_user_id == victim)))
    assert row.status == "removing"  # the intent was committed, the outcome never was
    assert session.get(GroupRollback, rb.id).status == "running"
    assert victim not in sandbox.members(chat_id)
    # the lease of the dead runner runs out; the next run takes over
    session.execute(sa.update(GroupRollback).values(claimed_until=utcnow() - timedelta(1)))
    session.commit()
    run_due(send_mail=False)
    assert len(_deletes(sandbox, chat_id)) == 3  # the victim's once, then the two others
    session.expire_all()
    rb = session.get(GroupRollback, rb.id)
    assert (rb.status, rb.removed) == ("done", 3)
    assert session.scalars(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "member.removed")).one() == 3


def test_a_running_step_is_waited_for(end_state, sandbox, app):
    w = end_state
    s = step(w["group"], "parallel_run")
    s.status, s.claimed_by = "running", "other-runner"
    s.claimed_until = utcnow() + timedelta(minutes=5)
    get_session().add(s)
    get_session().commit()
    rb = _undo(w)
    assert rollback.process_due("me", client_factory()) == 0
    session = get_session()
    session.expire_all()
    assert session.get(GroupRollback, rb.id).status == "pending"
    assert _deletes(sandbox, w["chat_id"]) == []
    # that runner finishes (its outcome overwrites the cancellation); the rollback goes on
    s = step(w["group"], "parallel_run")
    s.status, s.claimed_by, s.claimed_until = "due", None, None
    session.add(s)
    session.execute(sa.update(GroupRollback).values(next_attempt_at=utcnow()))
    session.commit()
    assert rollback.process_due("me", client_factory()) == 1
    assert step(w["group"], "parallel_run").status == "skipped"


def test_coordinator_refused_after_cutover_admin_allowed(end_state, sandbox, app,
                                                         make_user):
    w = end_state
    coordinator = make_user("coordinator", orgs=[w["org"]])
    auditor = make_user("auditor")
    with pytest.raises(rollback.RollbackRefused) as refused:
        rollback.request_rollback(w["group"], auditor, "нет")
    assert refused.value.code == "forbidden"
    set_status(w["group"], "cutover", "succeeded")
    with pytest.raises(rollback.RollbackRefused) as refused:
        rollback.request_rollback(w["group"], coordinator, "не получилось")
    assert refused.value.code == "forbidden"
    with pytest.raises(rollback.RollbackRefused) as refused:
        rollback.request_rollback(w["group"], w["admin"], "  ")
    assert refused.value.code == "invalid"
    rb = _undo(w)
    assert rb.after_cutover
    run_due(send_mail=False)
    assert rollback.latest(w["group"]).status == "done"


def test_the_group_can_be_planned_again(end_state, sandbox, app):
    w = end_state
    group = w["group"]
    _undo(w)
    run_due(send_mail=False)
    session = get_session()
    session.expire_all()
    group = session.get(SourceGroup, group.id)
    link(group, linked_chat_row(sandbox.chat_with_bot("Новый чат"), w["org"], "Новый чат"))
    wave = past_wave([group], w["admin"], "Волна 2")
    steps = session.scalars(sa.select(Step).where(Step.group_id == group.id)).all()
    assert len(steps) == 5 and {s.wave_id for s in steps} == {wave.id}
    assert {s.status for s in steps} <= {"pending", "due"}
    for emp in (*w["tool"], w["by_link"]):  # taken out by the rollback: to be added again
        assert _state(group, emp) == "linked"
    set_status(group, "invite", "skipped")
    run_due(send_mail=False)
    new_chat = session.get(SourceGroup, group.id).max_chat_id
    assert new_chat is not None
    for emp in (*w["tool"], w["by_link"]):
        assert _state(group, emp) == "added"


def test_planning_waits_for_a_rollback_under_way(end_state, sandbox, app):
    from migrator.waves.service import WaveError

    w = end_state
    set_status(w["group"], "cutover", "succeeded")
    _undo(w)
    session = get_session()
    group = session.get(SourceGroup, w["group"].id)
    group.wave_id = None  # even when its wave is over
    session.add(group)
    session.commit()
    with pytest.raises(WaveError):
        past_wave([group], w["admin"], "Слишком рано")


def test_cli(end_state, sandbox, app, runner):
    w = end_state
    result = runner.invoke(args=["groups", "rollback", w["group"].key])
    assert result.exit_code == 2  # --reason is required
    result = runner.invoke(args=["groups", "rollback", "no-such", "--reason", "x"])
    assert result.exit_code == 1 and "no-such" in result.output
    result = runner.invoke(args=["groups", "rollback", w["group"].key, "--reason",
                                 "ошибочный перенос"])
    assert result.exit_code == 0, result.output
    assert "3 removed" in result.output
    assert set(sandbox.members(w["chat_id"])).isdisjoint(
        {e.max_user_id for e in (*w["tool"], w["by_link"])})
    result = runner.invoke(args=["groups", "rollback", w["group"].key, "--reason", "снова"])
    assert result.exit_code == 1 and "нечего" in result.output.lower()


def test_page_asks_for_a_reason_then_undoes(end_state, sandbox, app, make_user, login):
    w = end_state
    coordinator = make_user("coordinator", orgs=[w["org"]])
    client = login(app.test_client(), coordinator)
    key = w["group"].key
    page = client.get(f"/groups/{key}")
    html = page.get_data(as_text=True)
    assert f"/engine/groups/{key}/rollback" in html and "Отменить перенос" in html
    form = client.get(f"/engine/groups/{key}/rollback")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="reason"' in html and "«откат»" in html
    assert "Undo" not in html
    refused = client.post(f"/engine/groups/{key}/rollback", data={"reason": " "})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Укажите причину." in html
    assert 'aria-invalid="true"' in html and "reason-error" in html
    assert get_session().scalar(sa.select(sa.func.count()).select_from(GroupRollback)) == 0
    done = client.post(f"/engine/groups/{key}/rollback", data={"reason": "передумали"})
    assert done.status_code == 302
    html = client.get(f"/groups/{key}").get_data(as_text=True)
    assert "ожидает следующего запуска" in html and "передумали" in html
    run_due(send_mail=False)
    html = client.get(f"/groups/{key}").get_data(as_text=True)
    assert "Удалены из чата Max" in html and "откреплено" in html


def test_page_needs_the_csrf_token(end_state, sandbox, app, make_user, login):
    w = end_state
    client = login(app.test_client(), w["admin"])
    app.config["WTF_CSRF_ENABLED"] = True
    resp = client.post(f"/engine/groups/{w['group'].key}/rollback", data={"reason": "x"})
    assert resp.status_code == 400
    assert get_session().scalar(sa.select(sa.func.count()).select_from(GroupRollback)) == 0


def test_page_refuses_a_coordinator_after_cutover(end_state, sandbox, app, make_user, login):
    w = end_state
    set_status(w["group"], "cutover", "succeeded")
    coordinator = make_user("coordinator", orgs=[w["org"]])
    client = login(app.test_client(), coordinator)
    html = client.get(f"/engine/groups/{w['group'].key}/rollback").get_data(as_text=True)
    assert "только администратор" in html and 'name="reason"' not in html
    resp = client.post(f"/engine/groups/{w['group'].key}/rollback", data={"reason": "x"})
    assert resp.status_code == 409
    assert get_session().scalar(sa.select(sa.func.count()).select_from(GroupRollback)) == 0


def test_api(end_state, sandbox, app, make_user, api_token):
    w = end_state
    client = app.test_client()
    coordinator = make_user("coordinator", orgs=[w["org"]])
    url = f"/api/v1/groups/{w['group'].key}/rollback"
    admin_h, coord_h = api_token(w["admin"]), api_token(coordinator)
    resp = client.post(url, json={}, headers=coord_h)
    assert resp.status_code == 400 and resp.json["error"] == "invalid"
    assert client.post(url, json={"reason": "x"}).status_code == 401
    set_status(w["group"], "cutover", "succeeded")
    resp = client.post(url, json={"reason": "x"}, headers=coord_h)
    assert resp.status_code == 403 and resp.json["error"] == "forbidden"
    resp = client.post(url, json={"reason": "откат по поручению"}, headers=admin_h)
    assert resp.status_code == 202
    assert resp.json["status"] == "pending" and resp.json["reason"] == "откат по поручению"
    resp = client.post(url, json={"reason": "ещё"}, headers=admin_h)
    assert resp.status_code == 409 and resp.json["error"] == "conflict"
    run_due(send_mail=False)
    body = client.get(f"/api/v1/groups/{w['group'].key}", headers=admin_h).json
    assert body["mapping"] is None
    assert body["rollback"]["status"] == "done" and body["rollback"]["removed"] == 3
    doc = client.get("/api/v1/openapi.json").json
    assert "post" in doc["paths"]["/groups/{key}/rollback"]

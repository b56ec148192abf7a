"""Every member moves on their own clock: one person Max refuses holds nobody back, a Start
press is served by the next run, one call serves every group of a chat, failures by kind,
and a member's attention item comes and goes with the events."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from enginetest import deliver, link, member, open_items, past_wave, set_status, step, user_update

from migrator.audit.models import AuditEvent
from migrator.db import get_session, utcnow
from migrator.engine.runner import run_due
from migrator.groups import states
from migrator.groups.models import GroupMember
from migrator.groups.service import coverage
from migrator.max.models import MaxChat

T0 = 1_770_000_000_000


def test_one_refused_person_holds_back_nobody(world, sandbox, app):
    app.config.update(MEMBER_RETRY_SECONDS=900)
    org, group, emps, chat_id, admin = world(n=6)
    private = emps[0]
    sandbox.ctl("PATCH", f"/users/{private.max_user_id}", {"allow_add": False})
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    before = utcnow()
    run_due(send_mail=False)

    in_chat = set(sandbox.members(chat_id))
    assert {e.max_user_id for e in emps[1:]} <= in_chat
    assert private.max_user_id not in in_chat
    refused = member(group, private)
    assert refused.state == states.RETRYING and refused.reason == "add.participant.privacy"
    assert refused.next_attempt_at >= before + timedelta(seconds=900 * 0.8)
    # the announcement did not wait for the refused person
    assert step(group, "announce").status == "waiting"
    assert sandbox.chat(chat_id)["pinned_message_id"]
    adding = step(group, "add_members")
    assert adding.status == "due"
    assert adding.next_attempt_at >= before + timedelta(seconds=900 * 0.8)

    # someone presses Start later: they are added by the very next run, not in 15 minutes
    late_uid = sandbox.user("Поздний")
    from migrator.people.models import Employee

    session = get_session()
    late = Employee(email="late@example.org", full_name="Поздний Павел", org_id=org.id)
    session.add(late)
    session.flush()
    session.add(GroupMember(group_id=group.id, employee_id=late.id))
    late.max_user_id = late_uid
    session.flush()
    assert states.link_employee(late.id) == 1
    session.commit()
    calls = sandbox.add_calls(chat_id)
    summary = run_due(send_mail=False)
    assert late_uid in sandbox.members(chat_id)
    assert sandbox.add_calls(chat_id) == calls + 1
    assert summary.reopened == 1  # brought forward: the step was still open (due later)
    reopened = get_session().scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action == "step.reopened")).all()
    assert reopened == []  # only a re-opening of a finished step is news for the trail
    assert member(group, late).state == states.ADDED
    # the refused person's own clock was not touched by it
    assert member(group, private).attempts == 1


def test_refused_for_good_after_the_setting_then_joins_on_their_own(world, sandbox, app):
    app.config.update(MEMBER_RETRY_SECONDS=0, MEMBER_MAX_ATTEMPTS=2)
    org, group, emps, chat_id, admin = world(n=3)
    private = emps[0]
    sandbox.ctl("PATCH", f"/users/{private.max_user_id}", {"allow_add": False})
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    for _ in range(3):
        run_due(send_mail=False)
    refused = member(group, private)
    assert (refused.state, refused.attempts) == (states.UNADDABLE, 2)
    assert step(group, "add_members").status == "succeeded"
    items = open_items("member_unaddable")
    assert [(i.subject_id, i.group_id) for i in items] == [(private.id, group.id)]
    get_session().refresh(group)
    assert group.needs_attention and group.attention_reason.startswith("add_failed")
    page_calls = sandbox.add_calls(chat_id)
    run_due(send_mail=False)
    assert sandbox.add_calls(chat_id) == page_calls  # no more calls for them

    # they join through the chat's link themselves: in the chat, nothing flagged any more
    sandbox.join(chat_id, private.max_user_id)
    deliver(user_update("user_added", private.max_user_id, T0, chat_id))
    joined = member(group, private)
    assert joined.state == states.JOINED and not joined.by_tool
    assert open_items("member_unaddable") == []
    get_session().refresh(group)
    assert not group.needs_attention and group.attention_reason is None
    assert coverage(group) == (3, 3)


def test_someone_who_leaves_no_longer_counts(world, sandbox, app):
    org, group, emps, chat_id, admin = world(n=2)
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    run_due(send_mail=False)
    assert coverage(group) == (2, 2)
    sandbox.leave(chat_id, emps[1].max_user_id)
    deliver(user_update("user_removed", emps[1].max_user_id, T0, chat_id))
    assert member(group, emps[1]).state == states.LEFT
    assert coverage(group) == (1, 2)
    # an older event arriving late changes nothing
    deliver(user_update("user_added", emps[1].max_user_id, T0 - 5, chat_id))
    assert member(group, emps[1]).state == states.LEFT


def test_soft_failure_is_retried_never_taken_as_done(world, sandbox, app):
    org, group, emps, chat_id, admin = world(n=3)
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    sandbox.faults(soft_fail={"next": 1, "method": "POST", "path": "/chats/{chatId}/members"})
    run_due(send_mail=False)
    # the first call said success:false and did nothing; the members wait on their clocks
    reasons = {member(group, e).reason for e in emps}
    states_now = {member(group, e).state for e in emps}
    assert states_now <= {states.RETRYING, states.ADDED}
    if states_now == {states.ADDED}:  # retried at once (no back-off in tests) and added
        assert sandbox.add_calls(chat_id) >= 1
    else:
        assert reasons == {"max.soft_failure"}
    for _ in range(2):
        run_due(send_mail=False)
    assert {member(group, e).state for e in emps} == {states.ADDED}
    assert {e.max_user_id for e in emps} <= set(sandbox.members(chat_id))


def test_one_call_serves_every_group_of_a_chat(world, sandbox, app, make_group):
    org, first, emps, chat_id, admin = world(n=4)
    second = make_group(org, members=emps[2:])
    chat = get_session().scalars(sa.select(MaxChat).where(MaxChat.chat_id == chat_id)).one()
    link(second, chat)
    past_wave([first, second], admin)
    for g in (first, second):
        set_status(g, "invite", "skipped")
    run_due(send_mail=False)
    assert sandbox.add_calls(chat_id) == 1
    assert {member(g, e).state for g in (first,) for e in emps} == {states.ADDED}
    assert {member(second, e).state for e in emps[2:]} == {states.ADDED}


def test_refused_members_are_visible_and_retried_alone_or_in_bulk(world, sandbox, app, client,
                                                                  login, make_user, make_org):
    app.config.update(MEMBER_RETRY_SECONDS=0, MEMBER_MAX_ATTEMPTS=1)
    org, group, emps, chat_id, admin = world(n=4)
    refused = emps[:2]
    for emp in refused:
        sandbox.ctl("PATCH", f"/users/{emp.max_user_id}", {"allow_add": False})
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    run_due(send_mail=False)
    assert {member(group, e).state for e in refused} == {states.UNADDABLE}

    coord = make_user("coordinator", orgs=[org])
    login(client, coord)
    page = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert "выполнен с ошибками" in page
    assert page.count("нельзя добавить") >= 2 and "настройки приватности в Max" in page
    assert "Повторить добавление всех, кого Max не добавил (2)" in page
    attention = client.get("/attention").get_data(as_text=True)
    assert refused[0].full_name in attention and "Повторить" in attention

    # somebody else's coordinator cannot touch them
    stranger = make_user("coordinator", orgs=[make_org()])
    other = app.test_client()
    login(other, stranger)
    assert other.post(f"/engine/groups/{group.key}/members/retry").status_code == 404
    assert member(group, refused[0]).state == states.UNADDABLE

    # one of them changed their privacy settings: retried alone, added by the next run
    sandbox.ctl("PATCH", f"/users/{refused[0].max_user_id}", {"allow_add": True})
    resp = client.post(f"/engine/groups/{group.key}/members/retry",
                       data={"employee_id": str(refused[0].id)})
    assert resp.status_code == 302
    again = member(group, refused[0])
    assert (again.state, again.attempts) == (states.LINKED, 0)
    assert member(group, refused[1]).state == states.UNADDABLE
    run_due(send_mail=False)
    assert member(group, refused[0]).state == states.ADDED
    assert refused[0].max_user_id in sandbox.members(chat_id)

    # the rest in bulk; Max refuses again, so they come back with the reason
    client.post(f"/engine/groups/{group.key}/members/retry", data={})
    assert member(group, refused[1]).state == states.LINKED
    run_due(send_mail=False)
    assert member(group, refused[1]).state == states.UNADDABLE
    events = get_session().scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action == "members.retry")).all()
    assert len(events) == 2
    # nobody left to retry: a clear message, nothing changes
    resp = client.post(f"/engine/groups/{group.key}/members/retry",
                       data={"employee_id": str(refused[0].id)}, follow_redirects=True)
    assert "Повторять некого" in resp.get_data(as_text=True)


def test_lost_answers_never_add_or_pin_twice(world, sandbox, app):
    """Max carries out the add call and the pin, and the answers are lost (the connection
    drops): the retry reads the chat's members and the pin instead of calling again."""
    org, group, emps, chat_id, admin = world(n=3)
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    sandbox.faults(drop_answer={"next": 1, "method": "POST", "path": "/chats/{chatId}/members"})
    run_due(send_mail=False)
    assert {e.max_user_id for e in emps} <= set(sandbox.members(chat_id))
    assert {member(group, e).state for e in emps} == {states.ADDED}
    calls = [(r["method"], r["path"].rsplit("/", 1)[-1], r["fault"])
             for r in sandbox.request_log() if r["path"].startswith(f"/chats/{chat_id}/")]
    dropped = calls.index(("POST", "members", "drop_answer"))
    assert ("GET", "members", None) in calls[dropped:]
    assert [c for c in calls if c[:2] == ("POST", "members")] == [
        ("POST", "members", "drop_answer")]

    other = world(n=2)
    past_wave([other[1]], other[4], name="Волна 2")
    set_status(other[1], "invite", "skipped")
    sandbox.faults(drop_answer={"next": 1, "method": "PUT", "path": "/chats/{chatId}/pin"})
    for _ in range(3):
        run_due(send_mail=False)
    pins = [r["fault"] for r in sandbox.request_log()
            if r["method"] == "PUT" and r["path"] == f"/chats/{other[3]}/pin"
            and r["status"] == 200]
    assert pins == ["drop_answer"]
    assert sandbox.chat(other[3])["pinned_message"]
    assert step(other[1], "announce").status == "waiting"

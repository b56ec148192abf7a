"""Kill -9 the runner mid-work several times: nothing lost, nothing duplicated."""

from __future__ import annotations

import math
import random
import signal
import time

import pytest
import sqlalchemy as sa
from enginetest import link, linked_chat_row, past_wave, set_status, start_runner, step

from migrator.db import get_session
from migrator.groups.models import GroupMember

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp(app_config):
    from smtp_helpers import SmtpSink

    sink = SmtpSink().start()
    app_config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port)
    yield sink
    sink.stop()


def test_runner_killed_repeatedly_ends_in_the_same_state(sandbox, smtp, ctx, app, make_org,
                                                         make_employee, make_group, make_user):
    org = make_org()
    admin = make_user("admin")
    # people not on Max yet: the invite step e-mails them while the runner is being killed
    invitees = [make_employee(org) for _ in range(40)]
    mail_group = make_group(org, members=invitees)
    groups, chats, people = [], [], []
    for g in range(3):
        emps = [make_employee(org, max_user_id=sandbox.user(f"С{g}-{i}")) for i in range(130)]
        group = make_group(org, members=emps)
        chat_id = sandbox.chat_with_bot(f"Чат {g}")
        link(group, linked_chat_row(chat_id, org, f"Чат {g}"))
        groups.append(group)
        chats.append(chat_id)
        people.append({e.max_user_id for e in emps})
    past_wave([*groups, mail_group], admin)
    for group in groups:
        set_status(group, "invite", "skipped")
    sandbox.faults(slow={"probability": 1.0, "ms": 150})
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        proc = start_runner(app, RUNNER_LEASE_SECONDS=1)
        time.sleep(rng.uniform(0.4, 1.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(10)
        time.sleep(1.1)  # the dead runner's lease runs out
    sandbox.faults(slow={"probability": 0.0})
    for _ in range(3):
        proc = start_runner(app, RUNNER_LEASE_SECONDS=1)
        out, _err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
    assert kills >= 2
    # every invitation arrived, each person's under one Message-ID (a resend after a kill
    # keeps the Message-ID, so the mailbox sees the same message)
    by_person: dict[str, set[str]] = {}
    for msg in smtp.messages:
        by_person.setdefault(str(msg["To"]), set()).add(msg["Message-ID"])
    assert set(by_person) == {e.email for e in invitees}
    assert all(len(ids) == 1 for ids in by_person.values())
    session = get_session()
    session.expire_all()
    from migrator.engine.models import Step

    state = [(s.group_id, s.kind, s.status, s.attempts, s.last_error)
             for s in session.exec(sa.select(Step)).scalars()]
    for group, chat_id, ids in zip(groups, chats, people, strict=True):
        chat = sandbox.chat(chat_id)
        members = [m["user_id"] for m in chat["members"]]
        assert ids <= set(members) and len(members) == len(set(members))
        bot_msgs = [m for m in chat["messages"] if m["sender"]["is_bot"]]
        assert len(bot_msgs) == 1, "the announcement was posted more than once (or lost)"
        # killed while posting, the restart finds the post with GET /messages (or pinned)
        announce = step(group, "announce")
        assert announce.status == "waiting", state
        assert announce.message_id == bot_msgs[0]["body"]["mid"], state
        assert chat["pinned_message_id"] == bot_msgs[0]["body"]["mid"]
        # add calls: the lower bound plus at most one repeat per kill
        assert math.ceil(130 / 100) <= sandbox.add_calls(chat_id) <= 2 + kills, state
        assert step(group, "add_members").status == "succeeded", state
        statuses = session.scalars(sa.select(GroupMember.state).where(
            GroupMember.group_id == group.id)).all()
        assert set(statuses) == {"added"}, state

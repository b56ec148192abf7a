"""Two runner processes on PostgreSQL share the work: no step is executed twice."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from enginetest import link, linked_chat_row, past_wave, set_status, start_runner, step

from migrator.audit.models import AuditEvent
from migrator.db import get_session

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]


def test_two_runners_never_run_a_step_twice(sandbox, ctx, app, make_org, make_employee,
                                             make_group, make_user):
    org = make_org()
    admin = make_user("admin")
    groups, chats = [], []
    for g in range(12):
        emps = [make_employee(org, max_user_id=sandbox.user(f"Р{g}-{i}")) for i in range(3)]
        group = make_group(org, members=emps)
        chat_id = sandbox.chat_with_bot(f"Чат {g}")
        link(group, linked_chat_row(chat_id, org))
        groups.append(group)
        chats.append(chat_id)
    past_wave(groups, admin)
    for group in groups:
        set_status(group, "invite", "skipped")
    sandbox.faults(slow={"probability": 1.0, "ms": 40})
    procs = [start_runner(app, "--limit", "2") for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # both did some of the work
    assert all("claimed 0," not in o for o in outs), outs
    started = get_session().scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "step.started")).all()
    per_step: dict = {}
    for ev in started:
        per_step.setdefault(ev.object_id, []).append(json.loads(ev.summary))
    assert len({ev.actor_label for ev in started}) == 2
    # no claim was ever taken from a live runner, and each add step ran exactly once
    for summaries in per_step.values():
        assert not any(s["reclaimed"] for s in summaries)
    for group, chat_id in zip(groups, chats, strict=True):
        add = step(group, "add_members")
        assert len(per_step[str(add.id)]) == 1
        assert sandbox.add_calls(chat_id) == 1
        chat = sandbox.chat(chat_id)
        posted = len([m for m in chat["messages"] if m["sender"]["is_bot"]])
        # posted once, or (if its turn came while the add step ran) postponed, not doubled
        assert posted == (1 if step(group, "announce").status == "waiting" else 0)
    assert len(sandbox.requests("POST", "/messages")) <= len(chats)

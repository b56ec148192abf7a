"""Two Start updates handled at the same time (two web workers): one token links one
person once; one Max account pressing two records' own invitations links both."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from migrator.db import get_session
from migrator.mail.models import OutboxMessage
from migrator.people.invites import LINK_TOKEN_RE, handle_bot_started, issue_invitations
from migrator.people.models import Employee


def _tokens(ctx):
    rows = ctx.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    return [LINK_TOKEN_RE.search(r.body_text).group(1) for r in rows]


def _handle(app, token, user_id, results, key, gate=None, handled=None):
    with app.app_context():
        try:
            results[key] = handle_bot_started(token, user_id, None)
            if handled is not None:
                handled.set()
            if gate is not None:
                gate.wait(10)
            get_session().commit()
        except Exception as exc:  # reported by the test
            results[key] = exc


@pytest.mark.parametrize("case", ["same_token", "same_max_user"])
def test_concurrent_starts(case, app, ctx, make_org, make_employee, make_group):
    org = make_org()
    a, b = make_employee(org), make_employee(org)
    group = make_group(org, members=[a, b])
    issue_invitations(group)
    ctx.commit()
    tok_a, tok_b = _tokens(ctx)
    ctx.rollback()  # end the read (on SQLite every transaction holds the write lock)
    second = (tok_a, 2) if case == "same_token" else (tok_b, 1)

    results: dict = {}
    gate, handled = threading.Event(), threading.Event()
    first = threading.Thread(target=_handle, args=(app, tok_a, 1, results, "first", gate,
                                                   handled))
    first.start()
    assert handled.wait(10)
    other = threading.Thread(target=_handle, args=(app, *second, results, "second"))
    other.start()
    time.sleep(0.3)
    if case == "same_token":
        assert other.is_alive()  # waits for the first transaction (row lock / write lock)
    gate.set()
    first.join(10)
    other.join(20)
    expected = "used" if case == "same_token" else "linked"
    assert results == {"first": "linked", "second": expected}
    ctx.expire_all()
    linked = ctx.scalars(sa.select(Employee).where(Employee.max_user_id.is_not(None))
                         .order_by(Employee.id)).all()
    # each record through its own invitation: one person with two records links both
    assert [(e.id, e.max_user_id) for e in linked] == (
        [(a.id, 1)] if case == "same_token" else [(a.id, 1), (b.id, 1)])

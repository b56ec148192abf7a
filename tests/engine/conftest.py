"""Fixtures of the engine tests: a sandbox world with a linked chat."""

from __future__ import annotations

import pytest
from enginetest import link, linked_chat_row


@pytest.fixture
def world(sandbox, ctx, make_org, make_employee, make_group, make_user):
    """``n`` linked employees (sandbox users) in a group linked to a sandbox chat."""

    def build(n=5, unlinked=0, perms=None):
        org = make_org(head_email="head@example.org")
        emps = [make_employee(org, max_user_id=sandbox.user(f"Сотрудник{i}")) for i in range(n)]
        emps += [make_employee(org) for _ in range(unlinked)]
        group = make_group(org, members=emps)
        chat_id = sandbox.chat_with_bot("Учителя", perms=perms)
        link(group, linked_chat_row(chat_id, org))
        admin = make_user("admin")
        return org, group, emps, chat_id, admin

    return build

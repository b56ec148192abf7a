"""``flask demo stage-sandbox``: the demo database mirrored into a fresh Max sandbox."""

from __future__ import annotations

from sqlmodel import select

from migrator.db import get_session
from migrator.demo.stage import NEW_CHATS
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import REQUIRED_PERMISSIONS, MaxChat
from migrator.people.models import Employee
from migrator.sandbox.client import SandboxControl
from migrator.sandbox.state import BOT_USER_ID


def _world(url: str) -> dict:
    with SandboxControl(url) as sandbox:
        chats, users, updates = sandbox.chats(), sandbox.users(), sandbox.updates()
    return {"chats": {c["chat_id"]: c for c in chats}, "users": {u["user_id"]: u for u in users},
            "updates": len(updates)}


def _stage(runner, url: str, *extra: str) -> str:
    result = runner.invoke(args=["demo", "stage-sandbox", "--sandbox-url", url, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _bot(chat: dict) -> dict | None:
    return next((m for m in chat["members"] if m["user_id"] == BOT_USER_ID), None)


def test_stage_sandbox_mirrors_the_demo_and_is_idempotent(app, runner, sandbox):
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert "chats 14" in _stage(runner, sandbox.url)
    world = _world(sandbox.url)

    with app.app_context():
        s = get_session()
        linked = set(s.exec(select(Employee.max_user_id)
                            .where(Employee.max_user_id.is_not(None))).all())
        chats = s.exec(select(MaxChat)).all()
        added = {}
        for chat_id, uid in s.exec(
                select(MaxChat.chat_id, Employee.max_user_id)
                .join(SourceGroup, SourceGroup.max_chat_id == MaxChat.id)
                .join(GroupMember, GroupMember.group_id == SourceGroup.id)
                .join(Employee, Employee.id == GroupMember.employee_id)
                .where(GroupMember.state.in_(("added", "joined")))).all():
            added.setdefault(chat_id, set()).add(uid)

    # Every employee linked to Max exists with the same id and has pressed Start.
    assert linked <= set(world["users"])
    assert all(world["users"][uid]["bot_started"] for uid in linked)
    assert any(not u["allow_add"] for u in world["users"].values())  # the privacy refusals

    # Every chat, the one the bot was removed from too (added once, then removed).
    assert {c.chat_id for c in chats} == set(world["chats"])
    removed = [c for c in chats if c.status == "removed"]
    assert removed and all(world["chats"][c.chat_id]["bot_status"] == "removed"
                           and _bot(world["chats"][c.chat_id]) is None for c in removed)
    kept = [c for c in chats if c.status != "removed"]
    seen_missing = False
    for chat in kept:
        box = world["chats"][chat.chat_id]
        assert box["title"] == chat.title
        bot = _bot(box)
        assert bot is not None and box["bot_status"] == "active"
        assert bot["is_admin"] == chat.bot_is_admin
        if chat.bot_is_admin:
            assert set(bot["permissions"]) == chat.permissions
        if chat.title == "Минздрав: оперативные вопросы":  # the "missing rights" demo chat
            assert bot["permissions"] == ["write"]
            seen_missing = True
        members = {m["user_id"] for m in box["members"]}
        assert added.get(chat.chat_id, set()) <= members
        owner = next(m for m in box["members"] if m["is_owner"])
        if chat.added_by_max_user_id is not None:
            assert owner["user_id"] == chat.added_by_max_user_id
    assert seen_missing
    assert sum(len(v) for v in added.values()) > 30

    # A second run creates nothing and changes nothing.
    assert "users 0, chats 0, members 0, bots 0" in _stage(runner, sandbox.url)
    assert _world(sandbox.url) == world

    # New chats for discovery: created once, with the bot holding every required right.
    assert "new_chats 2" in _stage(runner, sandbox.url, "--new-chats")
    after = _world(sandbox.url)
    for chat_id, title, _org in NEW_CHATS:
        box = after["chats"][chat_id]
        assert box["title"] == title and len(box["members"]) >= 3
        assert set(_bot(box)["permissions"]) == set(REQUIRED_PERMISSIONS)
    assert "new_chats 0" in _stage(runner, sandbox.url, "--new-chats")
    assert _world(sandbox.url) == after


def test_seed_stages_every_chat_when_a_sandbox_answers(sandbox, app, runner):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "Sandbox staged: users" in first.output and "chats 14" in first.output
    with app.app_context():
        chats = get_session().exec(select(MaxChat)).all()
        titles = {c.chat_id: c.title for c in chats}
        removed = {c.chat_id for c in chats if c.status == "removed"}
    world = _world(sandbox.url)
    assert {cid: c["title"] for cid, c in world["chats"].items()} == titles
    assert removed and {cid for cid, c in world["chats"].items()
                        if c["bot_status"] == "removed"} == removed
    # a second seed (the region already there) creates nothing more in the sandbox
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0, again.output
    assert "users 0, chats 0, members 0, bots 0" in again.output
    assert _world(sandbox.url) == world


def test_seed_without_a_sandbox_says_so(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "No Max sandbox answers" in result.output

"""«Требует внимания» rows carry the action that fixes them: retry a failed step or a
member, open the step to confirm, re-check or open a chat, link another chat to a group.
Buttons post back to the attention page."""

from __future__ import annotations

from sqlmodel import select

from migrator.db import get_session
from migrator.engine.models import Step
from migrator.groups.models import SourceGroup
from migrator.max.models import MaxChat


def _chat_ids(*titles: str) -> list[int]:
    return [get_session().exec(select(MaxChat.id).where(MaxChat.title == t)).one()
            for t in titles]


def _group_id(key: str) -> int:
    return get_session().exec(select(SourceGroup.id).where(SourceGroup.key == key)).one()


def _section(html: str, key: str) -> str:
    return html.split(f'id="{key}"', 1)[1].split("</section>", 1)[0]


def test_each_row_offers_the_action_that_fixes_it(tree, make_user, login, client):
    login(client, make_user("admin"))
    html = client.get("/attention").get_data(as_text=True)

    failed = _section(html, "failed")  # gB's invitations failed: retry here, or open it
    assert 'action="/engine/groups/gB/steps/invite/retry"' in failed
    assert 'name="next" value="/attention?"' in failed
    assert 'href="/groups/gB#step-invite"' in failed

    waiting = _section(html, "waiting")  # gA1's announcement waits: confirm on the group page
    assert 'href="/groups/gA1#step-announce"' in waiting
    assert "Подтвердить на странице группы" in waiting

    members = _section(html, "members")  # a member Max refused: retry them alone
    assert 'action="/engine/groups/gA1/members/retry"' in members

    chats = _section(html, "chats")  # rights lost or the bot removed: re-check, open
    for chat_id in _chat_ids("Чат А", "Чат Б"):
        assert f'action="/max/chats/{chat_id}/refresh"' in chats
        assert f'href="/max/chats/{chat_id}"' in chats

    groups = _section(html, "groups")  # a flagged group: open it
    assert 'href="/groups/gB"' in groups


def test_a_retry_from_the_attention_page_comes_back_to_it(tree, make_user, login, client):
    login(client, make_user("admin"))
    resp = client.post("/engine/groups/gB/steps/invite/retry", data={"next": "/attention?"})
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/attention")
    session = get_session()
    session.expire_all()
    step = session.exec(select(Step).where(Step.kind == "invite",
                                           Step.group_id == _group_id("gB"))).one()
    assert step.status == "due" and step.attempts == 0
    assert 'id="failed"' not in client.get("/attention").get_data(as_text=True)


def test_a_group_flagged_for_its_chat_links_to_the_chat_panel(tree, make_user, login, client,
                                                              ctx):
    group = tree.groups[2]
    group.attention_reason = "bot_removed"
    ctx.add(group)
    ctx.commit()
    login(client, make_user("admin"))
    groups = _section(client.get("/attention").get_data(as_text=True), "groups")
    assert 'href="/groups/gB#max-link"' in groups and "Сопоставить другой чат" in groups
    group.attention_reason = 'add_failed {"count":3}'
    ctx.add(group)
    ctx.commit()
    groups = _section(client.get("/attention").get_data(as_text=True), "groups")
    assert 'href="/groups/gB?reason=any#members"' in groups


def test_an_auditor_gets_links_but_no_buttons(tree, make_user, login, client):
    login(client, make_user("auditor"))
    html = client.get("/attention").get_data(as_text=True)
    assert "/retry" not in html and "/refresh" not in html
    assert 'href="/groups/gB#step-invite"' in html

"""System attention items: a refused bot token (the 401 breaker) shows one system item on
«Требует внимания» for admins and coordinators alike, with one e-mail to the admins for the
incident, and the item is resolved when the breaker closes by itself."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from enginetest import past_wave, set_status

from migrator.attention.models import AttentionItem
from migrator.db import get_session, utcnow
from migrator.engine.runner import run_due
from migrator.mail.models import OutboxMessage
from migrator.max import breaker
from migrator.waves.models import Setting

STOPPED = "Работа с Max остановлена"


def _items() -> list[AttentionItem]:
    session = get_session()
    session.expire_all()
    return list(session.scalars(sa.select(AttentionItem).where(
        AttentionItem.subject_type == "system").order_by(AttentionItem.id)))


def _page(client) -> str:
    get_session().commit()
    return client.get("/attention").get_data(as_text=True)


def test_a_refused_token_is_one_system_item_until_max_accepts_it_again(
        world, sandbox, app, client, login, make_user):
    org, group, emps, chat_id, admin = world(n=2)
    past_wave([group], admin)
    set_status(group, "invite", "skipped")
    token = app.config["MAX_BOT_TOKEN"]
    app.config["MAX_BOT_TOKEN"] = "revoked-token"
    run_due(send_mail=False)
    assert breaker.tripped_at() is not None
    items = _items()
    assert [(i.code, i.resolved_at) for i in items] == [("max_auth_failed", None)]

    coordinator = make_user("coordinator", orgs=[org])
    login(client, coordinator)  # coordinators see why nothing moves
    page = _page(client)
    assert STOPPED in page and "Max не принимает токен бота (401)" in page
    sections = re.findall(r'<section id="([a-z_]+)"', page)
    assert sections[0] == "system"  # at the top

    # the breaker stays open across runs: still one item, still one e-mail per admin
    row = get_session().get(Setting, breaker.PROBE_KEY)
    row.value = (utcnow() - timedelta(minutes=2)).isoformat()
    get_session().commit()
    run_due(send_mail=False)  # probes GET /me, refused again
    assert len(_items()) == 1
    mails = get_session().scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "max_auth_failed")).all()
    assert len(mails) == len({m.to_addr for m in mails}) == 1

    # a valid token again: the breaker closes by itself and the item is resolved
    app.config["MAX_BOT_TOKEN"] = token
    row = get_session().get(Setting, breaker.PROBE_KEY)
    row.value = (utcnow() - timedelta(minutes=2)).isoformat()
    get_session().commit()
    run_due(send_mail=False)
    assert breaker.tripped_at() is None
    assert [i.resolved_at is not None for i in _items()] == [True]
    assert STOPPED not in _page(client)

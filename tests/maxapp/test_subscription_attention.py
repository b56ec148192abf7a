"""A lost webhook subscription is a system attention item: raised with the admins' one
e-mail per incident, shown on «Требует внимания», resolved when the subscription is back."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from migrator.attention.models import AttentionItem
from migrator.mail.models import OutboxMessage


def _check(runner, ctx):
    result = runner.invoke(args=["max", "check-subscription"])
    ctx.rollback()
    return result


def _items(ctx) -> list[tuple[str, bool]]:
    rows = ctx.scalars(select(AttentionItem).where(AttentionItem.subject_type == "system")
                       .order_by(AttentionItem.id)).all()
    out = [(i.code, i.resolved_at is None) for i in rows]
    ctx.rollback()
    return out


def _mails(ctx) -> int:
    n = ctx.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "max_subscription_lost"))
    ctx.rollback()
    return n


def test_a_lost_subscription_is_one_item_and_one_mail_per_incident(
        live_server, sandbox, runner, ctx, client, login, make_user, make_org):
    make_user("admin", email="admin@region.example")
    coordinator = make_user("coordinator", orgs=[make_org()])
    ctx.commit()
    assert runner.invoke(args=["max", "subscribe"]).exit_code == 0
    ctx.rollback()
    assert _check(runner, ctx).exit_code == 0
    assert _items(ctx) == []

    sandbox.state.subscriptions.clear()  # Max gave up after 8 hours of failures
    assert _check(runner, ctx).exit_code != 0
    assert _check(runner, ctx).exit_code != 0  # checked again: the same incident
    assert _items(ctx) == [("max_subscription_lost", True)]
    assert _mails(ctx) == 1

    login(client, coordinator)
    page = client.get("/attention").get_data(as_text=True)
    assert "Работа с Max остановлена" in page
    assert "Max перестал доставлять события на вебхук" in page and "/max/webhook" in page

    # subscribed again: the next check resolves it
    assert runner.invoke(args=["max", "subscribe"]).exit_code == 0
    ctx.rollback()
    assert _check(runner, ctx).exit_code == 0
    assert _items(ctx) == [("max_subscription_lost", False)]
    assert "Max перестал доставлять" not in client.get("/attention").get_data(as_text=True)

    # lost again later: a new incident, a new item and a new e-mail
    sandbox.state.subscriptions.clear()
    _check(runner, ctx)
    assert _items(ctx) == [("max_subscription_lost", False), ("max_subscription_lost", True)]
    assert _mails(ctx) == 2

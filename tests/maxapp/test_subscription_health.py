"""The webhook subscription check: Max drops a subscription after 8 hours of failed
deliveries; the app notices, audits it, e-mails the admins and re-subscribes in production."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.mail.models import OutboxMessage


def _subscribe(runner, ctx):
    result = runner.invoke(args=["max", "subscribe"])
    ctx.rollback()
    assert result.exit_code == 0, result.output


def _actions(ctx, prefix="max.subscri"):
    rows = ctx.scalars(select(AuditEvent.action).where(AuditEvent.action.like(prefix + "%"))
                       .order_by(AuditEvent.seq)).all()
    ctx.rollback()
    return list(rows)


def test_nothing_expected_while_polling(sandbox, runner, ctx):
    result = runner.invoke(args=["max", "check-subscription"])
    assert result.exit_code == 0, result.output
    assert "No webhook expected" in result.output
    assert _actions(ctx) == []


def test_a_dropped_subscription_is_noticed_and_the_admins_told(
        live_server, sandbox, runner, ctx, make_user, make_org):
    make_user("admin", email="admin@region.example")
    make_user("coordinator", orgs=[make_org()], email="coord@region.example")
    ctx.commit()
    _subscribe(runner, ctx)
    ok = runner.invoke(args=["max", "check-subscription"])
    assert ok.exit_code == 0 and "Webhook subscribed" in ok.output
    sandbox.state.subscriptions.clear()  # Max gave up after 8 hours of failures
    lost = runner.invoke(args=["max", "check-subscription"])
    assert lost.exit_code != 0 and "is gone" in lost.output
    assert _actions(ctx) == ["max.subscribe", "max.subscription_lost"]
    mails = ctx.scalars(select(OutboxMessage)).all()
    assert [m.to_addr for m in mails] == ["admin@region.example"]
    assert "Max" in mails[0].subject and "8" in mails[0].body_text
    ctx.rollback()
    # checked again the same day: still audited, but no second e-mail
    runner.invoke(args=["max", "check-subscription"])
    n = ctx.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    ctx.rollback()
    assert n == 1


def test_production_subscribes_again(live_server, sandbox, runner, ctx, app, make_user):
    make_user("admin", email="admin@region.example")
    ctx.commit()
    app.config["ENV"] = "production"  # the webhook is always expected there
    url = live_server.url + "/max/webhook"
    result = runner.invoke(args=["max", "check-subscription"])
    assert "subscribed again" in result.output, result.output
    assert list(sandbox.state.subscriptions) == [url]
    assert _actions(ctx) == ["max.subscription_lost", "max.subscribe"]
    result = runner.invoke(args=["max", "check-subscription"])
    assert "Webhook subscribed" in result.output

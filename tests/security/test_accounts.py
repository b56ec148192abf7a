"""Sessions end (sign-out, new password, deactivation, idle and absolute timeouts); passwords
are strong; API tokens expire, are revocable and record their last use; failed sign-ins do
not grow the audit trail without limit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.auth import service
from migrator.auth.models import ApiToken, User
from migrator.db import utcnow

STRONG = "s3cret-pass-Lw9q"


def _copy_cookie(src, dst):
    dst.set_cookie("session", src.get_cookie("session").value)


# --- sessions ------------------------------------------------------------------------------


def test_logout_ends_a_copied_cookie(app, client, make_user, login):
    user = make_user("admin")
    login(client, user)
    thief = app.test_client()
    _copy_cookie(client, thief)
    assert thief.get("/").status_code == 200
    client.post("/logout")
    assert thief.get("/").status_code == 302  # back to the sign-in page


def test_a_new_password_and_deactivation_end_sessions(app, client, make_user, login, ctx,
                                                      runner):
    user = make_user("admin", email="boss@example.org")
    login(client, user)
    assert client.get("/").status_code == 200
    result = runner.invoke(args=["users", "create", "boss@example.org", "--role", "admin",
                                 "--password-stdin"], input=STRONG + "\n")
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302
    login(client, user, password=STRONG)
    assert runner.invoke(args=["users", "deactivate", "boss@example.org"]).exit_code == 0
    assert client.get("/").status_code == 302
    resp = client.post("/login", data={"email": user.email, "password": STRONG})
    assert resp.status_code == 401  # a deactivated user cannot sign in
    assert runner.invoke(args=["users", "activate", "boss@example.org"]).exit_code == 0
    login(client, user, password=STRONG)
    actions = ctx.exec(select(AuditEvent.action)).all()
    assert "user.deactivate" in actions and "user.activate" in actions


def test_idle_and_absolute_timeouts(app, client, make_user, login):
    app.config.update(SESSION_IDLE_MINUTES=60, SESSION_MAX_DAYS=1)
    user = make_user("admin")
    with time_machine.travel(utcnow(), tick=False) as traveller:
        login(client, user)
        traveller.shift(timedelta(minutes=59))
        assert client.get("/").status_code == 200
        traveller.shift(timedelta(minutes=61))
        assert client.get("/").status_code == 302  # idle for over an hour
        login(client, user)
        for _ in range(25):  # active all along, yet over a day after the sign-in
            traveller.shift(timedelta(minutes=59))
            resp = client.get("/")
        assert resp.status_code == 302


def test_session_cookie_lives_no_longer_than_the_absolute_timeout(client, make_user, login):
    user = make_user("admin")
    resp = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    cookie = resp.headers["Set-Cookie"]
    assert "Expires=" in cookie


# --- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["12345678", "short-Pw9", "123456789012", "password1234",
                                      "qwertyuiop12", "ivan.petrov@example.org",
                                      "my-ivan.petrov-pass"])
def test_weak_passwords_are_refused(ctx, password):
    with pytest.raises(service.AuthError):
        service.create_user("ivan.petrov@example.org", password, "admin",
                            full_name="Иван Петров")
    ctx.rollback()
    assert ctx.exec(select(User)).all() == []


def test_password_must_not_contain_the_name(ctx):
    with pytest.raises(service.AuthError, match="name"):
        service.create_user("ip@example.org", "Petrovich-42-xq", "admin", full_name="Petrovich")


def test_cli_refuses_a_weak_admin_password(runner, ctx):
    result = runner.invoke(args=["users", "create", "a@example.org", "--role", "admin",
                                 "--password-stdin"], input="12345678\n")
    assert result.exit_code != 0 and "12" in result.output
    assert ctx.exec(select(User)).all() == []


# --- API tokens -------------------------------------------------------------------------------


def test_tokens_expire_and_record_their_last_use(app, client, make_user, api_token, ctx):
    app.config["API_TOKEN_DAYS"] = 10
    headers = api_token(make_user("admin"))
    token = ctx.exec(select(ApiToken)).one()
    assert token.last_used_at is None
    assert token.expires_at - token.created_at == timedelta(days=10)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    ctx.expire_all()
    assert ctx.get(ApiToken, token.id).last_used_at is not None
    with time_machine.travel(utcnow() + timedelta(days=11), tick=False):
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_cli_lists_and_revokes_tokens(runner, client, make_user, api_token, ctx):
    user = make_user("admin", email="tok@example.org")
    headers = api_token(user)
    prefix = ctx.exec(select(ApiToken.prefix)).one()
    listed = runner.invoke(args=["users", "tokens", "tok@example.org"])
    assert listed.exit_code == 0 and prefix in listed.output and "active" in listed.output
    assert runner.invoke(args=["users", "revoke-token", prefix]).exit_code == 0
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(args=["users", "tokens", "tok@example.org"]).output
    assert runner.invoke(args=["users", "revoke-token", "mgr_nope"]).exit_code != 0
    assert ctx.exec(select(AuditEvent).where(AuditEvent.action == "token.revoke")).one()


def test_a_deactivated_users_token_stops_working(runner, client, make_user, api_token):
    user = make_user("admin", email="gone@example.org")
    headers = api_token(user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    runner.invoke(args=["users", "deactivate", "gone@example.org"])
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_the_tokens_page_lists_and_revokes_own_tokens_only(app, client, make_user, login,
                                                           api_token, ctx):
    me, other = make_user("admin"), make_user("admin")
    mine = api_token(me)
    api_token(other)
    my_token, other_token = (ctx.exec(select(ApiToken).where(ApiToken.user_id == u.id)).one()
                             for u in (me, other))
    login(client, me)
    html = client.get("/account/tokens").get_data(as_text=True)
    assert my_token.prefix in html and other_token.prefix not in html
    assert "API-токены" in html
    assert client.post(f"/account/tokens/{other_token.id}/revoke").status_code == 404
    assert client.post(f"/account/tokens/{my_token.id}/revoke").status_code == 302
    assert client.get("/api/v1/me", headers=mine).status_code == 401
    ctx.expire_all()
    assert ctx.get(ApiToken, other_token.id).revoked_at is None


# --- failed sign-ins and the audit trail ----------------------------------------------------------


def test_failed_sign_ins_write_one_event_per_window_with_a_count(app, client, make_user, ctx):
    app.config.update(LOGIN_MAX_FAILURES=1000)
    user = make_user("admin")
    with time_machine.travel(utcnow(), tick=False) as traveller:
        for _ in range(30):
            client.post("/login", data={"email": user.email, "password": "wrong-password"})
        events = ctx.exec(select(AuditEvent).where(
            AuditEvent.action == "auth.login_failed")).all()
        assert len(events) == 1 and json.loads(events[0].summary)["attempts"] == 1
        traveller.shift(timedelta(seconds=app.config["LOGIN_WINDOW_SECONDS"] + 1))
        client.post("/login", data={"email": user.email, "password": "wrong-password"})
    events = ctx.exec(select(AuditEvent).where(AuditEvent.action == "auth.login_failed")
                      .order_by(AuditEvent.seq)).all()
    assert [json.loads(e.summary)["attempts"] for e in events] == [1, 30]


def test_throttled_sign_ins_are_aggregated_too(app, client, make_user, ctx):
    user = make_user("admin")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 20):
        client.post("/login", data={"email": user.email, "password": "wrong-password"})
    throttled = ctx.exec(select(AuditEvent).where(
        AuditEvent.action == "auth.login_throttled")).all()
    assert len(throttled) == 1


# --- a second factor for admins ----------------------------------------------------------------


def test_totp_is_required_once_set_up(app, client, make_user, runner, ctx):
    import pyotp

    user = make_user("admin", email="root@example.org")
    result = runner.invoke(args=["users", "totp", "root@example.org"])
    assert result.exit_code == 0 and "otpauth://" in result.output
    secret = result.output.split("Secret: ")[1].split()[0]
    form = {"email": user.email, "password": "correct-horse-battery"}
    resp = client.post("/login", data=form)
    assert resp.status_code == 401 and "одноразовый код" in resp.get_data(as_text=True)
    assert client.post("/login", data={**form, "code": "000000"}).status_code == 401
    resp = client.post("/login", data={**form, "code": pyotp.TOTP(secret).now()})
    assert resp.status_code == 302
    assert runner.invoke(args=["users", "totp", "root@example.org", "--off"]).exit_code == 0
    assert client.get("/").status_code == 302  # a changed factor ends the sessions


def test_production_can_require_totp_for_admins(app, client, make_user):
    app.config["MIGRATOR_ADMIN_2FA"] = True
    admin, coordinator = make_user("admin"), make_user("auditor")
    resp = client.post("/login", data={"email": admin.email,
                                       "password": "correct-horse-battery"})
    assert resp.status_code == 403 and "второй фактор" in resp.get_data(as_text=True).lower()
    resp = client.post("/login", data={"email": coordinator.email,
                                       "password": "correct-horse-battery"})
    assert resp.status_code == 302

"""Sign-in, throttling, CSRF, security headers, users CLI."""

import re

from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.auth.models import ApiToken, User


def test_login_page_is_russian_by_default(client):
    resp = client.get("/login")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'lang="ru"' in html
    assert "Вход" in html


def test_login_page_in_english_on_request(client):
    html = client.get("/login?lang=en").get_data(as_text=True)
    assert "Sign in" in html and 'lang="en"' in html


def test_sign_in_and_out(client, make_user, login, ctx):
    user = make_user("admin")
    assert client.get("/").status_code == 302
    login(client, user)
    assert client.get("/").status_code == 200
    resp = client.post("/logout")
    assert resp.status_code == 302
    assert client.get("/").status_code == 302
    actions = ctx.exec(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert "auth.login" in actions and "auth.logout" in actions


def test_wrong_password_is_refused_and_audited(client, make_user, ctx):
    user = make_user("admin")
    resp = client.post("/login", data={"email": user.email, "password": "wrong-password"})
    assert resp.status_code == 401
    assert "Неверный" in resp.get_data(as_text=True)
    assert ctx.exec(select(AuditEvent).where(AuditEvent.action == "auth.login_failed")).first()


def test_login_is_throttled_after_repeated_failures(client, make_user, app):
    user = make_user("admin")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login", data={"email": user.email, "password": "nope-nope"})
    # Even the right password is refused while locked, with a clear message.
    resp = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert resp.status_code == 429
    assert "Слишком много" in resp.get_data(as_text=True)


def test_password_is_stored_as_argon2(make_user):
    user = make_user("admin")
    assert user.password_hash.startswith("$argon2")


def test_post_without_csrf_token_is_refused(app_config, make_user):
    from migrator import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    with app.app_context():
        pass
    user = make_user("admin")
    resp = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert resp.status_code == 400
    # With the token from the form, the same sign-in works.
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                       "csrf_token": token})
    assert resp.status_code == 302
    app.extensions["migrator.engine"].dispose()


def test_security_headers(client):
    resp = client.get("/login")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "HttpOnly" in (resp.headers.get("Set-Cookie") or "HttpOnly")


def test_open_redirect_is_refused(client, make_user):
    user = make_user("admin")
    resp = client.post("/login?next=https://evil.example/", data={
        "email": user.email, "password": "correct-horse-battery"})
    assert resp.headers["Location"] == "/"


def test_users_cli_create_and_token(runner, ctx, make_org):
    org = make_org(code="EDU")
    result = runner.invoke(args=["users", "create", "Coord@Example.org", "--role", "coordinator",
                                 "--org", "EDU", "--password-stdin"], input="s3cret-pass-Lw9q\n")
    assert result.exit_code == 0, result.output
    user = ctx.exec(select(User).where(User.email == "coord@example.org")).one()
    assert user.role == "coordinator"
    result = runner.invoke(args=["users", "token", "coord@example.org"])
    assert result.exit_code == 0
    token = result.output.strip()
    assert token.startswith("mgr_")
    stored = ctx.exec(select(ApiToken)).one()
    assert token not in stored.token_hash  # only the hash is kept
    assert org.id


def test_users_cli_rejects_unknown_org_and_role(runner):
    result = runner.invoke(args=["users", "create", "x@example.org", "--role", "coordinator",
                                 "--org", "NOPE", "--password-stdin"], input="s3cret-pass-Lw9q\n")
    assert result.exit_code != 0
    assert "NOPE" in result.output
    result = runner.invoke(args=["users", "create", "x@example.org", "--role", "boss",
                                 "--password-stdin"], input="s3cret-pass-Lw9q\n")
    assert result.exit_code != 0


def test_production_refuses_default_secret_key(app_config):
    import pytest

    from migrator import create_app
    from migrator.config import DEFAULT_SECRET_KEY, ConfigError

    with pytest.raises(ConfigError):
        create_app({**app_config, "ENV": "production", "SECRET_KEY": DEFAULT_SECRET_KEY})


def test_inline_errors_are_tied_to_their_fields(client, make_user):
    user = make_user("admin")
    html = client.post("/login", data={"email": user.email, "password": "wrong-password"}
                       ).get_data(as_text=True)
    assert 'aria-describedby="password-error"' in html and 'id="password-error"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-invalid' not in html.split('id="email"')[1].split(">")[0]


def test_production_refuses_a_webhook_max_would_refuse(app_config):
    import pytest

    from migrator import create_app
    from migrator.config import ConfigError

    prod = {**app_config, "ENV": "production",
            "SECRET_KEY": "a-long-random-secret-key-0123456789-xyz",
            "MAX_WEBHOOK_SECRET": "hook-Secret_42-abcdefghijklmnopqrstuv",
            "MIGRATOR_BASE_URL": "https://migrator.example.ru", "SESSION_COOKIE_SECURE": True}
    for bad in ("http://migrator.example.ru", "https://migrator.example.ru:8443",
                "https://127.0.0.1:5000"):
        with pytest.raises(ConfigError, match="443"):
            create_app({**prod, "MIGRATOR_BASE_URL": bad})
    for bad in ("abc", "with space!", "ünïcode-secret"):
        with pytest.raises(ConfigError, match="MAX_WEBHOOK_SECRET"):
            create_app({**prod, "MAX_WEBHOOK_SECRET": bad})
    app = create_app({**prod, "MIGRATOR_BASE_URL": "https://migrator.example.ru:443"})
    assert app.config["ENV"] == "production"

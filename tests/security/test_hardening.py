"""Defects from the security review (issue: OWASP ASVS level 2), each with its regression test:
API sessions and errors, bounded query-string numbers, production settings, report formulas,
cache headers, proxies, the webhook's body limit and its numbers."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from migrator import create_app
from migrator.audit.models import AuditEvent
from migrator.auth.models import LoginAttempt
from migrator.config import ConfigError
from migrator.max.models import MaxUpdate

SECRET = "test-webhook-secret"
GOOD_SECRET = "Zq3-x8Lw_P0vRt7Ys2Ku9Nb4Hd6Mf1Ga5Jc"


# --- the API: Bearer only, no session, JSON errors -----------------------------------------


def test_api_ignores_the_browser_session_cookie(client, make_user, login, make_org, make_group):
    """A signed-in browser must not be able to act through the API (it is CSRF-exempt)."""
    org = make_org(code="EDU")
    make_group(org, key="edu-chat")
    login(client, make_user("admin"))
    assert client.get("/").status_code == 200  # the cookie works for pages
    resp = client.post("/api/v1/groups/edu-chat/steps/announce/confirm", data="{}",
                       content_type="text/plain")
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"
    assert client.get("/api/v1/chats").status_code == 401


def test_api_sets_no_cookie_and_answers_json_errors(client, make_user, api_token):
    headers = api_token(make_user("admin"))
    for path in ("/api/v1/no-such-thing", "/api/v1/chats?lang=en", "/api/v1/openapi.json"):
        resp = client.get(path, headers=headers)
        assert "Set-Cookie" not in resp.headers, path
    resp = client.get("/api/v1/no-such-thing", headers=headers)
    assert resp.status_code == 404 and resp.is_json and resp.get_json()["error"] == "not_found"
    resp = client.delete("/api/v1/chats", headers=headers)
    assert resp.status_code == 405 and resp.is_json and "GET" in resp.headers["Allow"]


def test_a_bearer_token_wins_over_a_kept_cookie(app, client, make_user, api_token, login):
    """A client that keeps cookies (from a page or ``?lang=``) is never locked out."""
    headers = api_token(make_user("admin"))
    # What an HTML 404 (a CSRF token) or ``?lang=`` leaves in the cookie jar, and even a
    # signed-in session of another user from another address ("strong" protection).
    kept = app.session_interface.get_signing_serializer(app).dumps(
        {"lang": "en", "csrf_token": "abc", "_user_id": "999", "_id": "other-client"})
    client.set_cookie("session", kept)
    for _ in range(3):
        resp = client.get("/api/v1/chats", headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)


def test_api_server_error_is_json(app, client, make_user, api_token):
    from migrator.api import bp as api_bp

    headers = api_token(make_user("admin"))
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("boom")

    app.view_functions["api.list_chats"] = boom
    resp = client.get("/api/v1/chats", headers=headers)
    assert resp.status_code == 500 and resp.get_json()["error"] == "internal_server_error"
    assert api_bp.name == "api"


# --- numbers in query strings --------------------------------------------------------------


@pytest.mark.parametrize("query", ["since=%C2%B2", "since=99999999999999999999999",
                                   "limit=99999999999999999999", "limit=%D9%A3"])
def test_audit_api_refuses_bad_numbers(client, make_user, api_token, query):
    resp = client.get(f"/api/v1/audit?{query}", headers=api_token(make_user("admin")))
    assert resp.status_code == 400 and resp.is_json


@pytest.mark.parametrize("query", ["offset=99999999999999999999", "offset=%C2%B2",
                                   "limit=99999999999999999999999"])
def test_chats_api_bounds_numbers(client, make_user, api_token, query):
    resp = client.get(f"/api/v1/chats?{query}", headers=api_token(make_user("admin")))
    assert resp.status_code in (200, 400) and resp.is_json


@pytest.mark.parametrize("path", ["/employees/?page=99999999999999999999",
                                  "/groups/?page=%C2%B2",
                                  "/audit/?before=99999999999999999999",
                                  "/audit/?after=%C2%B2",
                                  "/waves/?page=-99999999999999999999999"])
def test_pages_clamp_bad_numbers(client, make_user, login, path):
    login(client, make_user("admin"))
    assert client.get(path).status_code == 200


def test_link_form_refuses_a_non_ascii_chat_id(client, make_user, login, make_org, make_group):
    org = make_org(code="EDU")
    make_group(org, key="edu-chat")
    login(client, make_user("admin"))
    for raw in ("²", "9" * 30):
        resp = client.post("/max/groups/edu-chat/link", data={"chat": raw})
        assert resp.status_code in (302, 404)


def test_parse_int_takes_ascii_digits_only():
    from migrator.core.params import INT64_MAX, parse_int

    assert parse_int("42") == 42 and parse_int(" 7 ") == 7
    assert parse_int("²") is None and parse_int("٣") is None and parse_int("1_000") is None
    assert parse_int(str(INT64_MAX + 1)) is None and parse_int("-1") is None
    assert parse_int(True) is None and parse_int(5, 1, 4) is None


# --- production settings -------------------------------------------------------------------


def _production(app_config, **over):
    cfg = {**app_config, "ENV": "production", "SECRET_KEY": "k" * 4 + GOOD_SECRET,
           "MAX_WEBHOOK_SECRET": GOOD_SECRET, "MIGRATOR_BASE_URL": "https://migrator.example",
           "SESSION_COOKIE_SECURE": True, **over}
    return create_app(cfg)


def test_production_accepts_strong_settings(app_config):
    app = _production(app_config)
    resp = app.test_client().get("/login")
    assert "max-age=" in resp.headers["Strict-Transport-Security"]
    app.extensions["migrator.engine"].dispose()


@pytest.mark.parametrize("over", [
    {"SECRET_KEY": "a" * 16},
    {"SECRET_KEY": "a" * 40},
    {"SECRET_KEY": "short-but-random-9f8e"},
    {"MAX_WEBHOOK_SECRET": "x"},
    {"MAX_WEBHOOK_SECRET": GOOD_SECRET + "!"},
    {"MAX_WEBHOOK_SECRET": "abcde"},
    {"MIGRATOR_BASE_URL": "http://migrator.example"},
    {"SESSION_COOKIE_SECURE": False},
])
def test_production_refuses_weak_settings(app_config, over):
    with pytest.raises(ConfigError):
        _production(app_config, **over)


def test_production_cookie_defaults_follow_the_https_base_url(tmp_path):
    from migrator.config import load_config

    cfg = load_config(str(tmp_path), {"MIGRATOR_BASE_URL": "https://m.example"})
    assert cfg["SESSION_COOKIE_SECURE"] is True


# --- the XLSX report writes text as text -----------------------------------------------------


def test_report_never_writes_a_formula(client, make_user, login, make_org):
    make_org(code="=HYPERLINK(\"https://evil.example\",\"x\")", name="=1+2")
    login(client, make_user("admin"))
    resp = client.get("/progress/report.xlsx")
    assert resp.status_code == 200
    raw = load_workbook(io.BytesIO(resp.data))  # formulas kept as written
    cells = [c for row in raw.active.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    # the formula-looking code and name are there, as plain text
    assert any(c.value == '=HYPERLINK("https://evil.example","x")' for c in cells)
    assert any(isinstance(c.value, str) and c.value.endswith("=1+2") for c in cells)


# --- cache headers, proxies, the webhook ---------------------------------------------------------


def test_signed_in_pages_are_not_cached(client, make_user, login):
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
    login(client, make_user("admin"))
    assert client.get("/").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("proxies, expected", [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_client_address_behind_trusted_proxies(app_config, make_user, ctx, proxies, expected):
    app = create_app({**app_config, "MIGRATOR_TRUSTED_PROXIES": proxies})
    client = app.test_client()
    user = make_user("admin")
    client.post("/login", data={"email": user.email, "password": "wrong-password-1"},
                headers={"X-Forwarded-For": "203.0.113.7"},
                environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert ctx.exec(select(LoginAttempt.client_ip)).all() == [expected]
    app.extensions["migrator.engine"].dispose()


def test_webhook_has_its_own_small_body_limit(app, client):
    app.config["WEBHOOK_MAX_BYTES"] = 1000
    body = json.dumps({"update_type": "message_created", "timestamp": 1,
                       "pad": "x" * 2000})
    resp = client.post("/max/webhook", data=body, content_type="application/json",
                       headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code == 413


@pytest.mark.parametrize("raw, reason", [
    ('{"update_type":"bot_added","timestamp":Infinity,"chat_id":1}', "not finite"),
    ('{"update_type":"bot_added","timestamp":1e400,"chat_id":1}', "not finite"),
    ('{"update_type":"bot_added","timestamp":1,"chat_id":99999999999999999999999}',
     "out of range"),
    ('{"update_type":"bot_started","timestamp":1,"user":{"user_id":-1e999}}', "not finite"),
])
def test_webhook_stores_bad_numbers_as_rejected(client, ctx, raw, reason):
    resp = client.post("/max/webhook", data=raw, content_type="application/json",
                       headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code == 200
    (row,) = ctx.exec(select(MaxUpdate)).all()
    assert row.processed_at is not None and reason in row.error
    assert row.chat_id is None
    (event,) = ctx.exec(select(AuditEvent).where(
        AuditEvent.action == "max.update_rejected")).all()
    assert reason in json.loads(event.summary)["reason"]
    again = client.post("/max/webhook", data=raw, content_type="application/json",
                        headers={"X-Max-Bot-Api-Secret": SECRET})
    assert again.status_code == 200
    assert len(ctx.exec(select(MaxUpdate)).all()) == 1


@pytest.mark.parametrize("target", ["/\\evil.example/", "/\\\\evil.example", "/\t/evil.example",
                                    "//evil.example", "https://evil.example/"])
def test_sign_in_never_redirects_to_another_site(client, make_user, target):
    user = make_user("admin")
    resp = client.post("/login", query_string={"next": target},
                       data={"email": user.email, "password": "correct-horse-battery"})
    assert resp.headers["Location"] == "/"


def test_path_ids_beyond_integer_ids_are_404_not_500(client, ctx, make_user, api_token):
    headers = api_token(make_user("admin"))
    for path in ("/api/v1/directives/9223372036854775808/progress",
                 "/api/v1/directives/11904550860207/progress",
                 "/waves/99999999999999999999999"):
        resp = client.get(path, headers=headers)
        assert resp.status_code == 404, (path, resp.status_code)

"""A signed-out visitor: the home page leads quietly to sign-in; other pages say why."""

from __future__ import annotations


def _flashes(client) -> list:
    with client.session_transaction() as sess:
        return list(sess.get("_flashes", []))


def test_home_goes_quietly_to_sign_in(client):
    resp = client.get("/")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/login")
    assert _flashes(client) == []
    page = client.get("/login").get_data(as_text=True)
    assert "Войдите, чтобы открыть эту страницу" not in page


def test_another_page_explains_and_comes_back(client):
    resp = client.get("/waves/")
    assert resp.status_code == 302
    assert "/login?next=" in resp.headers["Location"]
    assert [m for _c, m in _flashes(client)] == ["Войдите, чтобы открыть эту страницу."]


def test_favicon_is_served(client):
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.mimetype == "image/vnd.microsoft.icon"
    assert resp.data[:4] == b"\x00\x00\x01\x00" and b"PNG" in resp.data[:40]

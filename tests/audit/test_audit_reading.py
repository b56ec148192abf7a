"""The audit page, event view, exports and API: filters, keyset pages and scope."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from flask import render_template
from flask_login import login_user
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.audit.service import Actor, acting_as, record
from migrator.core.panels import panels_for
from migrator.db import get_session

JOB = Actor("job", "runner", "step runner")


@pytest.fixture
def world(ctx, make_org, make_user, make_group):
    """Org A (with child A1) and org B, their events, and users of each kind."""
    a = make_org(code="A")
    a1 = make_org(code="A1", parent=a)
    b = make_org(code="B")
    group_b = make_group(b, key="b-chat")
    group_a = make_group(a1, key="a1-chat")
    with acting_as(JOB):
        record("group.link", object_type="group", object_id=group_a.id, org_id=a1.id,
               summary={"marker": "visible-A1"})
        record("step.succeeded", object_type="group", object_id=group_a.id, org_id=a.id,
               summary={"marker": "visible-A"})
        record("group.link", object_type="group", object_id=group_b.id, org_id=b.id,
               summary={"marker": "secret-B"})
        record("step.failed", object_type="group", object_id=group_b.id, org_id=b.id,
               summary={"marker": "secret-B2", "name": "=HYPERLINK(\"http://evil\",\"x\")"})
        record("system.note", summary={"marker": "no-org"})
        record("group.rename", object_type="group", object_id=group_a.key, org_id=a1.id,
               summary={"marker": "visible-A1-by-key"})
    ctx.commit()
    return {
        "a": a, "a1": a1, "b": b, "group_a": group_a, "group_b": group_b,
        "admin": make_user("admin", email="admin@example.org"),
        "coord_a": make_user("coordinator", orgs=[a], email="coord-a@example.org"),
        "auditor": make_user("auditor", email="auditor@example.org"),
    }


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'href="/audit/(\d+)"', html)]


def test_admin_and_auditor_see_everything(client, login, world):
    for user in (world["admin"], world["auditor"]):
        login(client, user)
        html = client.get("/audit/").get_data(as_text=True)
        for marker in ("visible-A1", "visible-A", "secret-B", "no-org"):
            assert marker in html
        client.post("/logout")


def test_coordinator_sees_only_their_subtree(client, login, world, api_token, ctx):
    login(client, world["coord_a"])
    html = client.get("/audit/").get_data(as_text=True)
    assert "visible-A1" in html and "visible-A" in html
    assert "secret-B" not in html and "no-org" not in html
    # not even when asking for org B or B's objects explicitly
    html = client.get("/audit/?org=B").get_data(as_text=True)
    assert "secret-B" not in html and "Нет записей" in html
    gid = world["group_b"].id
    assert "secret-B" not in client.get(f"/audit/?object_type=group&object_id={gid}").get_data(
        as_text=True)
    b_seq = ctx.exec(select(AuditEvent.seq).where(AuditEvent.org_id == world["b"].id)).first()
    assert client.get(f"/audit/{b_seq}").status_code == 404
    for fmt in ("csv", "jsonl"):
        body = client.get(f"/audit/export.{fmt}").get_data(as_text=True)
        assert "visible-A1" in body and "secret-B" not in body and "no-org" not in body
    data = client.get("/api/v1/audit", headers=api_token(world["coord_a"])).get_json()
    markers = {e["summary"].get("marker") for e in data["events"]}
    assert markers == {"visible-A1", "visible-A", "visible-A1-by-key"}


def test_filters(client, login, world):
    login(client, world["admin"])

    def markers(qs):
        html = client.get("/audit/?" + qs).get_data(as_text=True)
        return set(re.findall(r"(visible-A1|visible-A(?!1)|secret-B2|secret-B(?!2)|no-org)",
                              html))

    assert markers("action=group.") == {"visible-A1", "secret-B"}
    assert markers("action=step.f") == {"secret-B2"}
    assert markers("action=nothing.") == set()
    assert markers("org=A") == {"visible-A1", "visible-A"}
    assert markers("org=A1") == {"visible-A1"}
    assert markers("actor=runner&org=B") == {"secret-B", "secret-B2"}
    assert markers("org=B&action=step.") == {"secret-B2"}  # either may drive the scan
    assert markers("org=A&action=group.") == {"visible-A1"}
    assert markers("actor=admin@example.org&action=group") == set()
    gid = world["group_b"].id
    assert markers(f"object_type=group&object_id={gid}") == {"secret-B", "secret-B2"}
    # several ids (row id and natural key) and several types, comma-separated
    html = client.get(f"/audit/?object_type=group,chat&object_id={world['group_a'].id},a1-chat")
    assert len(_seqs(html.get_data(as_text=True))) == 3  # link, step, rename (by key)
    today = date.today()
    around = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    assert "visible-A" in markers(around)
    assert markers(f"from={today + timedelta(days=2)}") == set()
    assert markers(f"to={today - timedelta(days=2)}") == set()
    resp = client.get("/audit/?from=yesterday")
    assert "ГГГГ-ММ-ДД" in resp.get_data(as_text=True)


def test_keyset_pages_are_disjoint_and_consecutive(client, login, ctx, make_user):
    admin = make_user("admin")
    with acting_as(JOB):
        for i in range(120):
            record("bulk.item", object_type="thing", object_id=i)
    ctx.commit()
    login(client, admin)
    total = ctx.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    pages, url = [], "/audit/"
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(_seqs(html))
        m = re.search(r'href="([^"]*before=\d+[^"]*)" rel="next"', html)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert [len(p) for p in pages] == [50, 50, total - 100]
    flat = [s for p in pages for s in p]
    assert flat == sorted(flat, reverse=True) == list(range(total, 0, -1))
    # "newer" from the last page gives back the middle page exactly
    html = client.get(f"/audit/?before={pages[1][-1]}").get_data(as_text=True)
    m = re.search(r'href="([^"]*after=\d+[^"]*)" rel="prev"', html)
    assert _seqs(client.get(m.group(1).replace("&amp;", "&")).get_data(as_text=True)) == pages[1]
    # filtered keyset pages: only bulk.item, 120 of them
    first = _seqs(client.get("/audit/?action=bulk.").get_data(as_text=True))
    second = _seqs(client.get(f"/audit/?action=bulk.&before={first[-1]}").get_data(as_text=True))
    third = _seqs(client.get(f"/audit/?action=bulk.&before={second[-1]}").get_data(as_text=True))
    assert len(first) == len(second) == 50 and len(third) == 20
    assert not set(first) & set(second) and first[-1] > second[0]


def test_csv_export_is_excel_friendly_and_neutralises_formulas(client, login, world, ctx):
    login(client, world["admin"])
    resp = client.get("/audit/export.csv?action=step.")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    # the name and the headers are Russian, the time local to the configured zone
    assert "filename*=UTF-8''%D0%B6%D1%83%D1%80%D0%BD%D0%B0%D0%BB" in resp.headers[
        "Content-Disposition"]  # «журнал-аудита-…»
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert "Время (Екатеринбург, +05:00)" in rows[0]
    assert {r["Код действия"] for r in rows} == {"step.succeeded", "step.failed"}
    failed = next(r for r in rows if r["Код действия"] == "step.failed")
    assert failed["Действие"] == "Шаг завершился ошибкой"
    assert failed["Подробности"].startswith("{")
    assert failed["Код организации"] == "B"
    # a cell that would start with "=" is prefixed with a quote
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    # the export is audited with its filters
    ev = ctx.exec(select(AuditEvent).where(AuditEvent.action == "audit.export")).one()
    assert json.loads(ev.summary) == {"format": "csv", "filters": {"action": "step."}}
    assert ev.actor_label == "admin@example.org"


def test_formula_cells_are_prefixed(client, login, ctx, make_user):
    admin = make_user("admin")
    with acting_as(Actor("user", "9", "=HYPERLINK(\"http://evil.example\",\"click\")")):
        record("odd.actor", object_type="@sum", object_id="+1", summary={})
    ctx.commit()
    login(client, admin)
    text = client.get("/audit/export.csv?action=odd.").get_data().decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert row["Кто"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert row["Тип объекта"] == "'@sum" and row["Идентификатор объекта"] == "'+1"


def test_jsonl_export_parses_and_carries_the_hashes(client, login, world):
    login(client, world["admin"])
    resp = client.get("/audit/export.jsonl")
    assert resp.status_code == 200
    lines = resp.get_data(as_text=True).splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in events)
    assert any(e["summary"].get("marker") == "secret-B" for e in events)
    assert client.get("/audit/export.xml").status_code == 404


def test_event_view_shows_canonical_content_and_hashes(client, login, world, ctx):
    ev = ctx.exec(select(AuditEvent).where(AuditEvent.org_id == world["a1"].id,
                                           AuditEvent.action == "group.link")).one()
    login(client, world["coord_a"])
    html = client.get(f"/audit/{ev.seq}").get_data(as_text=True)
    assert ev.hash in html and ev.prev_hash in html
    assert "Содержимое совпадает с хешем" in html
    assert "&#34;marker&#34;:&#34;visible-A1&#34;" in html or "visible-A1" in html
    assert client.get("/audit/999999").status_code == 404


def test_api_since_seq_and_time_with_cursor(client, world, api_token, ctx):
    headers = api_token(world["admin"])
    data = client.get("/api/v1/audit?limit=2", headers=headers).get_json()
    assert [e["seq"] for e in data["events"]] == [1, 2] and data["has_more"]
    assert data["next"] == 2
    rest = client.get(f"/api/v1/audit?since={data['next']}&limit=1000", headers=headers).get_json()
    assert rest["events"][0]["seq"] == 3 and not rest["has_more"]
    last = rest["next"]
    assert client.get(f"/api/v1/audit?since={last}", headers=headers).get_json() == {
        "events": [], "next": last, "has_more": False}
    first_time = data["events"][0]["created_at"]
    by_time = client.get(f"/api/v1/audit?since={first_time}&limit=1000",
                         headers=headers).get_json()
    assert by_time["events"][0]["seq"] == 1
    assert client.get("/api/v1/audit?since=2099-01-01T00:00:00%2B03:00",
                      headers=headers).get_json()["events"] == []
    assert client.get("/api/v1/audit?action=group.&limit=10", headers=headers).get_json()[
        "events"][0]["action"] == "group.link"
    assert client.get("/api/v1/audit?since=soon", headers=headers).status_code == 400
    assert client.get("/api/v1/audit?limit=0", headers=headers).status_code == 400
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "get" in spec["paths"]["/audit"]
    assert "AuditPage" in spec["components"]["schemas"]


def test_api_needs_a_token(client):
    # (no ``ctx`` here: an app context shared with the test would keep the signed-in user)
    assert client.get("/api/v1/audit").status_code == 401


def test_history_panel_lists_the_objects_events_within_scope(app, world):
    with app.test_request_context("/"):
        login_user(world["coord_a"])
        panels = dict(panels_for("group", world["group_a"]))
        ctx = panels["audit/_history.html"]
        # events naming the group by id or by key, newest first
        assert [e.action for e in ctx["audit_events"]] == ["group.rename", "step.succeeded",
                                                           "group.link"]
        html = render_template("audit/_history.html", **ctx)
        assert "История" in html and "Шаг выполнен" in html and "step.succeeded" not in html
        assert f"object_id={world['group_a'].id}" in ctx["audit_url"]
        # another organisation's group: the coordinator sees none of its events
        assert dict(panels_for("group", world["group_b"]))["audit/_history.html"][
            "audit_events"] == []
        # a Max chat's events are recorded under "max_chat" with Max's chat id
        with acting_as(JOB):
            record("max.chat_discovered", object_type="max_chat", object_id=-7001,
                   org_id=world["a"].id)
        get_session().commit()
        chat = SimpleNamespace(id=3, chat_id=-7001)
        chat_ctx = dict(panels_for("chat", chat))["audit/_history.html"]
        assert [e.action for e in chat_ctx["audit_events"]] == ["max.chat_discovered"]
        assert "object_type=chat,max_chat&object_id=3,-7001" in chat_ctx["audit_url"]
    for kind in ("chat", "wave", "employee", "organisation"):
        assert any(t == "audit/_history.html" for t, _ in _templates(kind))


def _templates(kind):
    from migrator.core.panels import _PANELS

    return [(p.template, p.object_type) for p in _PANELS if p.object_type == kind]


def test_nav_and_page_are_russian(client, login, world):
    login(client, world["admin"])
    html = client.get("/audit/").get_data(as_text=True)
    assert "Журнал аудита" in html and "Выгрузить" in html
    assert 'href="/audit/"' in client.get("/").get_data(as_text=True)


def test_planner_drives_by_the_rarer_filter(app, ctx, make_org, make_user):
    from migrator.audit import query
    from migrator.audit.query import AuditFilter

    orgs = [make_org() for _ in range(3)]
    with acting_as(JOB):
        for i in range(300):
            record("common.tick" if i % 50 else "rare.alarm", org_id=orgs[i % 3].id)
    ctx.commit()
    admin = make_user("admin")
    with app.test_request_context("/"):
        rare = query.plan(AuditFilter(action="rare.", org=orgs[0].code), admin)
        assert "action" in str(rare.branches[0][0])  # scanned along (action, seq)
        common = query.plan(AuditFilter(action="common.", org=orgs[0].code), admin)
        assert "org_id" in str(common.branches[0][0])
        found = query.seqs(rare, limit=50)
        events = query.load(found)
        assert events and {(e.action, e.org_id) for e in events} == {("rare.alarm", orgs[0].id)}

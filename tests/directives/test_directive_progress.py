"""Directives: recording through the API, plan against fact, statuses and scope."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import g

from migrator.db import utcnow
from migrator.directives.models import Directive, Milestone
from migrator.people.models import Employee
from migrator.progress.service import local_today


def _post(call, headers, payload):
    return call("POST", "/api/v1/directives", json=payload, headers=headers)


def test_heads_100_percent_over_a_region_nobody_linked_is_behind(
        call, client, login, region, make_user, api_token, directive_payload):
    admin = make_user("admin")
    headers = api_token(admin)
    resp = _post(call, headers, directive_payload(started_days_ago=10, due_in_days=10))
    assert resp.status_code == 201, resp.get_json()
    directive_id = resp.get_json()["id"]

    data = call("GET", f"/api/v1/directives/{directive_id}/progress", headers=headers).get_json()
    orgs = {o["org_code"]: o for o in data["organisations"]}
    assert set(orgs) == {"R", "A", "A1", "B"}
    for o in orgs.values():
        (m,) = o["milestones"]
        assert m["fact_percent"] == 0.0
        assert m["plan_percent"] == 50.0  # halfway along the straight line
        assert m["status"] == "behind" and o["status"] == "behind"
        assert m["days_left"] == 10
    assert orgs["R"]["milestones"][0]["total"] == 4  # four heads in the region

    g.pop("_login_user", None)
    login(client, admin)  # the page takes a signed-in session, not the API's Bearer token
    page = client.get(f"/directives/{directive_id}").get_data(as_text=True)
    assert "отстаёт" in page and "Руководители организаций, подключённые к Max" in page
    assert "<svg" in page  # the trajectory chart


def test_on_the_directive_day_nothing_is_behind_yet(
        call, client, region, make_user, api_token, directive_payload):
    headers = api_token(make_user("admin"))
    directive_id = _post(call, headers, directive_payload(started_days_ago=0)).get_json()["id"]
    url = f"/api/v1/directives/{directive_id}/progress?org=A"
    data = call("GET", url, headers=headers).get_json()
    assert [o["org_code"] for o in data["organisations"]] == ["A", "A1"]
    assert {o["status"] for o in data["organisations"]} == {"on_track"}


def test_linking_heads_moves_the_fact_and_completes_the_milestone(
        ctx, call, client, region, make_user, api_token, directive_payload):
    headers = api_token(make_user("admin"))
    directive_id = _post(call, headers, directive_payload(target=50)).get_json()["id"]
    now = utcnow()
    for n, email in enumerate(("a-head@example.org", "a1-head@example.org"), 1):
        emp = ctx.scalar(sa.select(Employee).where(Employee.email == email))
        emp.max_user_id, emp.linked_at = 9000 + n, now
    ctx.commit()
    data = call("GET", f"/api/v1/directives/{directive_id}/progress", headers=headers).get_json()
    orgs = {o["org_code"]: o["milestones"][0] for o in data["organisations"]}
    assert orgs["R"]["fact_percent"] == 50.0 and orgs["R"]["status"] == "done"
    assert orgs["A"]["fact_percent"] == 100.0 and orgs["A"]["status"] == "done"
    assert orgs["B"]["fact_percent"] == 0.0 and orgs["B"]["status"] == "behind"


def test_bad_directive_is_refused_and_writes_nothing(
        ctx, call, client, region, make_user, api_token, directive_payload):
    headers = api_token(make_user("admin"))
    bad = directive_payload(metric="chats", target=150, due_in_days=-20)
    bad["title"] = ""
    resp = _post(call, headers, bad)
    assert resp.status_code == 422
    details = resp.get_json()["details"]
    assert {"title", "milestones[0].metric", "milestones[0].target_percent",
            "milestones[0].due"} <= set(details)
    assert _post(call, headers, [1, 2]).status_code == 400
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Directive)) == 0
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Milestone)) == 0


def test_a_coordinator_sees_only_their_scope(
        call, client, region, make_user, api_token, directive_payload):
    admin = api_token(make_user("admin"))
    directive_id = _post(call, admin, directive_payload()).get_json()["id"]
    coordinator = make_user("coordinator", orgs=[region.A])
    headers = api_token(coordinator)

    data = call("GET", f"/api/v1/directives/{directive_id}/progress", headers=headers).get_json()
    assert [o["org_code"] for o in data["organisations"]] == ["A", "A1"]
    for code in ("B", "R"):
        url = f"/api/v1/directives/{directive_id}/progress?org={code}"
        assert call("GET", url, headers=headers).status_code == 404
    # A directive over the region may not be recorded by a coordinator of A.
    resp = _post(call, headers, directive_payload(scope="R"))
    assert resp.status_code == 422 and "scope_org" in resp.get_json()["details"]
    # A directive of another subtree is invisible.
    other = _post(call, admin, directive_payload(scope="B")).get_json()["id"]
    assert call("GET", f"/api/v1/directives/{other}/progress", headers=headers).status_code == 404
    auditor = api_token(make_user("auditor"))
    assert _post(call, auditor, directive_payload()).status_code == 403


def test_the_directive_pages_in_scope(call, client, login, region, make_user, ctx,
                                      directive_payload, api_token):
    admin = api_token(make_user("admin"))
    directive_id = _post(call, admin, directive_payload()).get_json()["id"]
    other = _post(call, admin, directive_payload(scope="B")).get_json()["id"]
    coordinator = make_user("coordinator", orgs=[region.A])
    g.pop("_login_user", None)
    login(client, coordinator)
    listing = call("GET", "/directives/").get_data(as_text=True)
    assert f"/directives/{directive_id}" in listing and f"/directives/{other}" not in listing
    page = call("GET", f"/directives/{directive_id}").get_data(as_text=True)
    assert "Школа А1" in page and "Ведомство Б" not in page
    assert call("GET", f"/directives/{other}").status_code == 404
    assert call("GET", f"/directives/{directive_id}?org=B").status_code == 404


def test_record_a_directive_through_the_form(client, login, region, make_user, ctx):
    login(client, make_user("admin"))
    today = local_today()
    form = {"title": "Поручение Минцифры", "issued_by": "Минцифры России",
            "issued_at": today.isoformat(), "scope_org": "A",
            "milestones-0-metric": "employees", "milestones-0-target_percent": "20",
            "milestones-0-due": (today + timedelta(days=30)).isoformat(),
            "milestones-1-metric": "groups", "milestones-1-target_percent": "abc",
            "milestones-1-due": ""}
    resp = client.post("/directives/new", data=form)
    assert resp.status_code == 200
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Directive)) == 0
    form["milestones-1-target_percent"] = "40"
    form["milestones-1-due"] = (today + timedelta(days=60)).isoformat()
    resp = client.post("/directives/new", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    ms = ctx.scalars(sa.select(Milestone).order_by(Milestone.due)).all()
    assert [(m.metric, m.target_percent) for m in ms] == [("employees", 20.0), ("groups", 40.0)]


def test_the_actual_curve_comes_from_the_daily_snapshots(ctx, region):
    from migrator.directives.figures import history, subtree_facts
    from migrator.progress.service import take_snapshots

    today = local_today()
    head = ctx.scalar(sa.select(Employee).where(Employee.email == "a-head@example.org"))
    head.max_user_id, head.linked_at = 4242, utcnow() - timedelta(days=5)
    for emp in ctx.scalars(sa.select(Employee)):
        emp.created_at = utcnow() - timedelta(days=30)
    ctx.commit()
    take_snapshots(day=today - timedelta(days=7))
    take_snapshots(day=today - timedelta(days=3))
    (live,) = [f for f in subtree_facts([region.A], None) if f.org.code == "A"]
    series = history([region.A], today - timedelta(days=10), today, live)
    assert series["heads"] == [(today - timedelta(days=7), 0.0),
                               (today - timedelta(days=3), 50.0), (today, 50.0)]
    # A's subtree: 5 employees, the head linked: 20 %.
    assert series["employees"] == [(today - timedelta(days=7), 0.0),
                                   (today - timedelta(days=3), 20.0), (today, 20.0)]

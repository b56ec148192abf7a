"""The dashboard's «Поручения» section: each directive's trajectory against the actual curve
of the reader's part of its scope, statuses and days left, the nearest few directives only."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import sqlalchemy as sa
import time_machine
from flask import g
from sqlalchemy import event

from migrator.db import get_engine, utcnow
from migrator.people.models import Employee
from migrator.progress.service import local_today, take_snapshots

HEADS = "Руководители организаций, подключённые к Max"
EMPLOYEES = "Сотрудники, подключённые к Max"


def _post(call, headers, payload) -> int:
    resp = call("POST", "/api/v1/directives", json=payload, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _page(client, url="/") -> str:
    g.pop("_login_user", None)
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def _section(page: str) -> str:
    start = page.index('<section aria-labelledby="directives-h"')
    return page[start:page.index("</section>", start)]


def _article(section: str, directive_id: int) -> str:
    start = section.index(f'aria-labelledby="directive-{directive_id}-h"')
    return section[start:section.index("</article>", start)]


def _text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _row(article: str, metric: str) -> list[str]:
    """The cells of a milestone's row in the section's table (the chart's text twin)."""
    for tr in re.findall(r"<tr>(.*?)</tr>", article, re.S):
        cells = [_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        if cells and cells[0] == metric:
            return cells
    raise AssertionError(f"no row for {metric!r}")


def _link(ctx, *emails) -> None:
    for n, email in enumerate(emails, 1):
        emp = ctx.scalar(sa.select(Employee).where(Employee.email == email))
        emp.max_user_id, emp.linked_at = 8000 + n, utcnow()
    ctx.commit()


def test_heads_100_percent_where_nobody_linked_falls_behind_as_the_trajectory_passes(
        call, client, login, region, make_user, api_token, directive_payload):
    admin = make_user("admin")
    # Issued today, "heads linked 100 % by D", D ten days ahead.
    directive_id = _post(call, api_token(admin),
                         directive_payload(started_days_ago=0, due_in_days=10))
    login(client, admin)
    article = _article(_section(_page(client)), directive_id)
    # metric, target, due, plan today, fact, status, days left
    cells = _row(article, HEADS)
    assert cells[3:] == ["0", "0", "в графике", "осталось 10 дней"]
    assert f'href="/directives/{directive_id}"' in article
    # The chart: an SVG with its title and description, the plan line and the actual curve.
    assert article.count('<svg class="chart"') == 1
    assert f'<title id="directive-{directive_id}-milestone-' in article
    assert "<desc id=" in article and "факт сейчас — 0%" in article
    assert 'class="s-plan"' in article and 'class="s-linked"' in article
    start = utcnow()
    with time_machine.travel(start + timedelta(days=5), tick=False):
        login(client, admin)
        cells = _row(_article(_section(_page(client)), directive_id), HEADS)
        assert cells[3:] == ["50", "0", "отстаёт", "осталось 5 дней"]
    with time_machine.travel(start + timedelta(days=12), tick=False):
        login(client, admin)
        article = _article(_section(_page(client)), directive_id)
        assert _row(article, HEADS)[3:] == ["100", "0", "отстаёт", "просрочено на 2 дня"]
        assert 'status-behind">отстаёт</span></h3>' in article  # the directive as a whole


def test_completed_milestone_and_figures_equal_the_dashboards(
        ctx, call, client, login, region, make_user, api_token, directive_payload):
    admin = make_user("admin")
    headers = api_token(admin)
    directive_id = _post(call, headers, directive_payload(
        metric="employees", target=20,
        extra=[{"metric": "heads", "target_percent": 50,
                "due": (local_today() + timedelta(days=30)).isoformat()}]))
    _link(ctx, "a-head@example.org", "a1@example.org")  # 2 of 9 employees, 1 of 4 heads
    g.pop("_login_user", None)
    progress = call("GET", "/api/v1/progress?org=R", headers=headers).get_json()
    login(client, admin)
    article = _article(_section(_page(client)), directive_id)
    employees = _row(article, EMPLOYEES)
    assert employees[4] == f"{progress['linked_pct']:g}" == "22.2"
    assert employees[5] == "выполнено"
    assert _row(article, HEADS)[3:6] == ["12.5", "25", "в графике"]
    assert article.count('<svg class="chart"') == 2  # one chart per milestone


def test_a_coordinator_sees_only_their_part_of_a_directive_on_the_dashboard(
        app, ctx, call, client, login, region, make_user, api_token, directive_payload):
    admin = make_user("admin")
    headers = api_token(admin)
    over_region = _post(call, headers, directive_payload(scope="R"))
    over_b = _post(call, headers, directive_payload(scope="B"))
    _link(ctx, "a-head@example.org")  # A's subtree: 1 of 2 heads; the region: 1 of 4
    coordinator = make_user("coordinator", orgs=[region.A])
    g.pop("_login_user", None)
    api = call("GET", f"/api/v1/directives/{over_region}/progress?org=A",
               headers=api_token(coordinator)).get_json()
    (a,) = [o for o in api["organisations"] if o["org_code"] == "A"]

    login(client, coordinator)
    section = _section(_page(client))
    assert f"/directives/{over_b}" not in section
    article = _article(section, over_region)
    cells = _row(article, HEADS)
    assert cells[4] == f"{a['milestones'][0]['fact_percent']:g}" == "50"  # A's, not 25
    assert cells[3] == "50" and cells[5] == "в графике"  # the region would be behind
    text = _text(section)
    assert "Ведомство А" in text and "— Ведомство А" in text  # the chart's title names A
    assert "Ведомство Б" not in text and "Регион" not in text

    # The region's administrator sees the region's figures; drilled down to B, only B's.
    g.pop("_login_user", None)
    other = login(app.test_client(), admin)
    assert _row(_article(_section(_page(other)), over_region), HEADS)[4] == "25"
    section = _section(_page(other, "/?org=B"))
    assert _row(_article(section, over_region), HEADS)[4] == "0"
    assert _row(_article(section, over_b), HEADS)[4] == "0"
    section = _section(_page(other, "/?org=A1"))
    assert f"/directives/{over_b}" not in section  # B's directive does not reach A1


def test_the_actual_curve_on_the_dashboard_comes_from_the_snapshots(
        ctx, call, client, login, region, make_user, api_token, directive_payload):
    admin = make_user("admin")
    directive_id = _post(call, api_token(admin), directive_payload(started_days_ago=10))
    head = ctx.scalar(sa.select(Employee).where(Employee.email == "a-head@example.org"))
    head.max_user_id, head.linked_at = 4242, utcnow() - timedelta(days=5)
    for emp in ctx.scalars(sa.select(Employee)):
        emp.created_at = utcnow() - timedelta(days=30)
    ctx.commit()
    today = local_today()
    for days_ago in (8, 6, 3):
        take_snapshots(day=today - timedelta(days=days_ago))
    login(client, admin)
    article = _article(_section(_page(client)), directive_id)
    # Three snapshots and today's live point on the actual curve (1 of 4 heads since day 5).
    (fact,) = re.findall(r'<polyline class="s-linked"[^>]*points="([^"]+)"', article)
    ys = [float(p.split(",")[1]) for p in fact.split()]
    assert len(ys) == 4 and ys[0] == ys[1] > ys[2] == ys[3]


def test_the_dashboard_shows_the_nearest_directives_in_a_bounded_number_of_queries(
        app, ctx, call, client, login, region, make_org, make_employee, make_user, api_token,
        directive_payload):
    admin = make_user("admin")
    headers = api_token(admin)

    def statements() -> int:
        seen = []
        engine = get_engine()

        def count(*_args):
            seen.append(1)

        _page(client)  # the first page after a commit reloads the user: warm up
        event.listen(engine, "before_cursor_execute", count)
        try:
            _page(client)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    ids = {}
    ids[5] = _post(call, headers, {**directive_payload(started_days_ago=30, due_in_days=5),
                                   "title": "Поручение через 5 дней"})
    login(client, admin)
    few = statements()
    for n in range(6):
        parent = make_org(code=f"M{n}", name=f"Муниципалитет {n}", parent=region.R,
                          head_email=f"m{n}@example.org")
        make_employee(parent, email=f"m{n}@example.org")
        make_employee(make_org(code=f"S{n}", name=f"Школа {n}", parent=parent))
    for due in (40, -2, 90, 200):
        ids[due] = _post(call, headers, {
            **directive_payload(scope="A" if due == 90 else "R", started_days_ago=30,
                                due_in_days=due), "title": f"Поручение {due}"})
    g.pop("_login_user", None)
    login(client, admin)
    assert statements() == few  # more organisations and directives, the same queries
    section = _section(_page(client))
    shown = re.findall(r'aria-labelledby="directive-(\d+)-h"', section)
    assert [int(i) for i in shown] == [ids[-2], ids[5], ids[40]]  # nearest to today first
    assert "показаны 3 из 5" in _text(section) and 'href="/directives/"' in section

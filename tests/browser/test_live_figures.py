"""Figures refresh by themselves (htmx from static/, every 10 s); the totals row shows; the
pages fit 1366 px without sideways scrolling and stay usable at 768 px."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from migrator.db import utcnow
from migrator.waves.models import Wave

CARD = "#live-figures .card:first-child .big"


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_dashboard_figures_refresh_without_a_reload(page, live_server, signed_in, ctx,
                                                    make_org, make_employee, make_group,
                                                    make_user, tmp_path):
    region = make_org(code="REG", name="Правительство региона")
    school = make_org(code="SCH", name="Школа № 3 имени длинного названия", parent=region)
    make_employee(region)
    people = [make_employee(school) for _ in range(3)]
    group = make_group(school, members=people, name="Учителя школы № 3")
    now = utcnow()
    wave = Wave(name="Волна 1", status="active", invite_at=now, add_members_at=now,
                announce_at=now, cutover_at=now + timedelta(days=3),
                deadline=now + timedelta(days=5))
    ctx.add(wave)
    ctx.flush()
    group.wave_id = wave.id
    ctx.add(group)
    ctx.commit()

    page.set_viewport_size({"width": 1366, "height": 900})
    page.set_default_timeout(30_000)  # a busy test machine renders the dashboard slowly
    signed_in(make_user("admin"))
    expect(page.locator(CARD)).to_contain_text("0 / 4", timeout=15_000)
    # The table: the region's own row, the school, and the total row.
    table = page.locator("table.orgs")
    expect(table.locator("tr.own")).to_contain_text("Правительство региона")
    expect(table.locator("tr.total")).to_contain_text("Итого")
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "dashboard-1366.png"), full_page=True)

    people[0].max_user_id, people[0].linked_at = 5551, utcnow()
    ctx.add(people[0])
    ctx.commit()
    # No reload: htmx fetches the page and swaps the cards in.
    expect(page.locator(CARD)).to_contain_text("1 / 4", timeout=25_000)

    page.goto(live_server.url + f"/waves/{wave.id}")
    expect(page.locator("#wave-figures")).to_contain_text("0 / 1")
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "wave-1366.png"), full_page=True)

    page.set_viewport_size({"width": 768, "height": 1000})
    page.goto(live_server.url + "/waves/")
    expect(page.get_by_role("link", name="Волна 1")).to_be_visible()
    page.screenshot(path=str(tmp_path / "waves-768.png"), full_page=True)
    page.goto(live_server.url + "/")
    expect(page.locator(CARD)).to_be_visible()
    page.screenshot(path=str(tmp_path / "dashboard-768.png"), full_page=True)


def test_pages_work_without_javascript(browser, live_server, make_org, make_employee,
                                       make_user, user_password):
    make_employee(make_org(code="REG", name="Правительство региона"))
    user = make_user("admin")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(live_server.url + "/")
    assert page.url.endswith("/login")  # quietly: no warning
    expect(page.locator(".flash")).to_have_count(0)
    page.get_by_label("Электронная почта").fill(user.email)
    page.get_by_label("Пароль").fill(user_password)
    page.get_by_role("button", name="Вход").click()
    expect(page.locator("#live-figures")).to_be_visible()
    context.close()

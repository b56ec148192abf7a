"""Planning waves: the API as in DESIGN.md, the form, scope, pause/resume/reschedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.db import get_session
from migrator.engine.models import Step
from migrator.waves.models import Setting, Wave

TZ = ZoneInfo("Asia/Yekaterinburg")
# Every date is built from "now": a wave always starts in the future, whatever today is.
BASE = (datetime.now(TZ) + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)


def _at(days: int, hour: int = 9) -> datetime:
    return BASE.replace(hour=hour) + timedelta(days=days)


def _iso(days: int, hour: int = 9) -> str:
    """An aware ISO timestamp in the configured zone (UTC+5)."""
    return _at(days, hour).isoformat()


def _local(days: int) -> str:
    """A datetime-local form value (no zone, read in MIGRATOR_TZ)."""
    return _at(days).strftime("%Y-%m-%dT%H:%M")


def _utc(days: int) -> str:
    return _at(days).astimezone(UTC).isoformat()


DATES = {
    "invite_at": _iso(0),
    "add_members_at": _iso(7),
    "announce_at": _iso(10),
    "cutover_at": _iso(21),
    "deadline": _iso(28, 18),
}


def _body(keys, **over):
    return {"name": "Школы, волна 1", "group_keys": keys, **DATES, **over}


def test_api_creates_wave_and_steps(client, ctx, make_org, make_group, make_user, api_token):
    org = make_org()
    g1, g2 = make_group(org), make_group(org, platform="telegram")
    user = make_user("coordinator", orgs=[org])
    resp = client.post("/api/v1/waves", json=_body([g1.key, g2.key]), headers=api_token(user))
    assert resp.status_code == 201, resp.json
    data = resp.json
    assert data["status"] == "planned" and sorted(data["group_keys"]) == sorted([g1.key, g2.key])
    assert data["cutover_at"] == _utc(21)
    steps = ctx.exec(select(Step).where(Step.group_id == g1.id)).all()
    due = {s.kind: s.due_at for s in steps}
    assert set(due) == {"invite", "add_members", "announce", "parallel_run", "cutover"}
    assert due["parallel_run"] == due["announce"] == datetime.fromisoformat(DATES["announce_at"])
    assert due["cutover"] == datetime.fromisoformat(DATES["cutover_at"])
    assert all(s.status == "pending" for s in steps)
    wave = ctx.get(Wave, data["id"])
    assert wave.org_id == org.id
    assert ctx.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "wave.create")) == 1


def test_api_rejects_bad_dates_with_details(client, ctx, make_org, make_group, make_user,
                                            api_token):
    org = make_org()
    g = make_group(org)
    headers = api_token(make_user("admin"))
    resp = client.post("/api/v1/waves", json=_body([g.key], cutover_at=_iso(1)),
                       headers=headers)
    assert resp.status_code == 400 and "cutover_at" in resp.json["details"]
    resp = client.post("/api/v1/waves", json=_body([g.key], invite_at=_local(0) + ":00"),
                       headers=headers)
    assert resp.status_code == 400 and "invite_at" in resp.json["details"]
    resp = client.post("/api/v1/waves", json=_body([]), headers=headers)
    assert resp.status_code == 400 and "group_keys" in resp.json["details"]
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Wave)) == 0


def test_api_scope_404_and_auditor_403(client, ctx, make_org, make_group, make_user, api_token):
    mine, other = make_org(), make_org()
    g_mine, g_other = make_group(mine), make_group(other)
    coord = make_user("coordinator", orgs=[mine])
    resp = client.post("/api/v1/waves", json=_body([g_mine.key, g_other.key]),
                       headers=api_token(coord))
    assert resp.status_code == 404
    assert g_other.key in resp.json["details"]["group_keys"]
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Step)) == 0


def test_api_auditor_403(client, ctx, make_org, make_group, make_user, api_token):
    g = make_group(make_org())
    resp = client.post("/api/v1/waves", json=_body([g.key]),
                       headers=api_token(make_user("auditor")))
    assert resp.status_code == 403


def test_group_cannot_be_in_two_open_waves(client, ctx, make_org, make_group, make_user,
                                           api_token):
    org = make_org()
    g = make_group(org)
    headers = api_token(make_user("admin"))
    assert client.post("/api/v1/waves", json=_body([g.key]), headers=headers).status_code == 201
    resp = client.post("/api/v1/waves", json=_body([g.key], name="again"), headers=headers)
    assert resp.status_code == 400 and g.key in resp.json["details"]["group_keys"]


def _dates(**over) -> dict:
    return {"invite_at": _local(0), "add_members_at": _local(1), "announce_at": _local(2),
            "cutover_at": _local(19), "deadline": _local(29), **over}


def test_form_prefills_defaults_and_shows_inline_errors(client, ctx, make_org, make_group,
                                                        make_user, login):
    org = make_org()
    g = make_group(org, name="Учителя школы № 7")
    ctx.add(Setting(key="offset_cutover_days", value="30"))
    ctx.commit()
    login(client, make_user("coordinator", orgs=[org]))
    page = client.get("/waves/new").get_data(as_text=True)
    assert "Запланировать волну" in page
    # the free groups in scope are offered with a box each, by name
    assert f'name="check" value="{g.key}"' in page and "Учителя школы № 7" in page
    # ticking a group and checking shows it by name with the pre-flight flags
    resp = client.post("/waves/new", data={"org": str(org.id), "check": g.key,
                                           "shown": g.key, "preview": "1", "name": "x"})
    text = resp.get_data(as_text=True)
    assert "Выбрана 1 группа" in text and "ещё не сопоставлена с чатом Max" in text
    resp = client.post("/waves/new", data={"name": "", "check": g.key, "submit": "1",
                                           **_dates(invite_at=_local(9))})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'aria-invalid="true"' in text
    assert "Не раньше предыдущего шага." in text
    assert f'value="{g.key}" checked' in text  # the pick survives the error
    resp = client.post("/waves/new", data={"name": "Волна", "submit": "1", **_dates()})
    assert resp.status_code == 200 and "Выберите хотя бы одну группу." in resp.get_data(
        as_text=True)
    assert ctx.exec(select(Wave)).first() is None
    resp = client.post("/waves/new", data={"name": "Волна", "picked": g.key, "submit": "1",
                                           **_dates()})
    assert resp.status_code == 302
    wave = ctx.exec(select(Wave)).one()
    # the form's local times are in MIGRATOR_TZ (UTC+5)
    assert wave.invite_at.isoformat() == _utc(0)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert g.key in page and "запланирован" in page


def test_planner_filters_by_subtree_platform_chat_and_members(client, ctx, make_org,
                                                              make_group, make_employee,
                                                              make_user, login):
    from migrator.max.models import MaxChat

    region = make_org(name="Минобразования")
    school = make_org(name="Школа № 3", parent=region)
    other = make_org(name="Минздрав")
    linked_person = make_employee(school, max_user_id=777)
    waiting_person = make_employee(school)
    tg = make_group(school, platform="telegram", name="Родители 5А",
                    members=[linked_person, waiting_person])
    wa = make_group(school, platform="whatsapp", name="Учителя", members=[linked_person])
    top = make_group(region, platform="telegram", name="Руководители")
    make_group(other, platform="telegram", name="Врачи")
    chat = MaxChat(chat_id=-5, title="Учителя (Max)", status="linked", org_id=school.id,
                   bot_is_admin=True, bot_permissions="read_all_messages,add_remove_members,"
                                                     "pin_message")
    ctx.add(chat)
    ctx.flush()
    wa.max_chat_id = chat.id
    ctx.add(wa)
    ctx.commit()
    login(client, make_user("admin"))

    def found(**data) -> set[str]:
        text = client.post("/waves/new", data={"find": "1", **data}).get_data(as_text=True)
        names = {"Родители 5А", "Учителя", "Руководители", "Врачи"}
        return {n for n in names if f"> {n}</label>" in text}

    assert found() == {"Родители 5А", "Учителя", "Руководители", "Врачи"}
    assert found(org=str(region.id)) == {"Родители 5А", "Учителя", "Руководители"}
    assert found(org=str(school.id)) == {"Родители 5А", "Учителя"}
    assert found(org=str(region.id), platforms="telegram") == {"Родители 5А", "Руководители"}
    assert found(chat_state="ready") == {"Учителя"}
    assert found(chat_state="no_chat", org=str(school.id)) == {"Родители 5А"}
    assert found(member_state="not_invited") == {"Родители 5А"}
    assert found(q="родит") == {"Родители 5А"}
    # the list and the preview use names: the platform in Russian words, no raw codes
    text = client.post("/waves/new", data={"org": str(school.id), "check": [tg.key, wa.key],
                                           "shown": [tg.key, wa.key], "preview": "1"}
                       ).get_data(as_text=True)
    preview = text[text.index('class="preview"'):]
    assert "Школа № 3" in preview and "Telegram" in preview and "WhatsApp" in preview
    assert "telegram" not in preview and tg.key not in preview
    assert top.key not in preview


def test_planner_pages_keep_the_picks_and_pick_every_group_found(client, ctx, make_org,
                                                                 make_group, make_user, login):
    org = make_org()
    groups = [make_group(org, name=f"Группа {i:02d}", key=f"pg-{i:02d}") for i in range(30)]
    login(client, make_user("coordinator", orgs=[org]))
    first = client.get("/waves/new").get_data(as_text=True)
    assert "Страница 1 из 2" in first and "Найдено 30 групп" in first
    on_first = [g.key for g in groups if f'value="{g.key}"' in first]
    assert len(on_first) == 25
    # tick two on page 1, go to page 2, tick one there: all three stay picked
    resp = client.post("/waves/new", data={"shown": on_first, "check": on_first[:2],
                                           "goto": "2"})
    text = resp.get_data(as_text=True)
    assert "Страница 2 из 2" in text and "Выбрано 2 группы" in text
    on_second = [g.key for g in groups if f'name="shown" value="{g.key}"' in text]
    assert len(on_second) == 5
    picked = [k for k in on_first[:2]]
    resp = client.post("/waves/new", data={"picked": picked, "shown": on_second,
                                           "check": on_second[:1], "goto": "1"})
    text = resp.get_data(as_text=True)
    assert "Выбрано 3 группы" in text
    # unticking a shown box drops it
    resp = client.post("/waves/new", data={"picked": [*picked, on_second[0]],
                                           "shown": on_first, "check": on_first[:1],
                                           "preview": "1"})
    assert "Выбрано 2 группы" in resp.get_data(as_text=True)
    # every group the filter finds, then the wave with all of them
    resp = client.post("/waves/new", data={"pick_all": "1"})
    assert "Выбрано 30 групп" in resp.get_data(as_text=True)
    resp = client.post("/waves/new", data={"name": "Все", "picked": [g.key for g in groups],
                                           "submit": "1", **_dates()})
    assert resp.status_code == 302
    ctx.expire_all()
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Step)) == 30 * 5


def test_planner_refuses_groups_of_another_organisation(client, ctx, make_org, make_group,
                                                       make_user, login):
    mine, other = make_org(name="Моя школа"), make_org(name="Чужая больница")
    g = make_group(mine, name="Мои учителя")
    foreign = make_group(other, name="Чужие врачи", key="foreign-doctors")
    login(client, make_user("coordinator", orgs=[mine]))
    page = client.get("/waves/new").get_data(as_text=True)
    assert "Мои учителя" in page and "Чужие врачи" not in page and foreign.key not in page
    # a forged key (ticked or carried) is refused, nothing is created, the rest stays picked
    for field in ("check", "picked"):
        resp = client.post("/waves/new", data={"name": "Волна", field: [g.key, foreign.key],
                                               "submit": "1", **_dates()})
        text = resp.get_data(as_text=True)
        assert resp.status_code == 200
        assert "Группы не найдены или недоступны вам: foreign-doctors" in text
        assert "Чужие врачи" not in text and "Чужая больница" not in text
        assert f'value="{g.key}" checked' in text
    assert ctx.exec(select(Wave)).first() is None
    ctx.expire_all()
    assert ctx.get(type(foreign), foreign.id).wave_id is None
    # another organisation's subtree as the filter is hidden
    assert client.post("/waves/new", data={"org": str(other.id), "find": "1"}
                       ).status_code == 404


def test_pause_resume_reschedule_audited(client, ctx, make_org, make_group, make_user, login):
    org = make_org()
    g = make_group(org)
    admin = make_user("admin")
    login(client, admin)
    from migrator.waves.service import create_wave

    wave = create_wave("W", [g.key], *[datetime.fromisoformat(DATES[k]) for k in
                                       ("invite_at", "add_members_at", "announce_at",
                                        "cutover_at", "deadline")], user=admin)
    ctx.commit()
    assert client.post(f"/waves/{wave.id}/pause").status_code == 302
    ctx.expire_all()
    assert ctx.get(Wave, wave.id).status == "paused"
    assert {s.status for s in ctx.exec(select(Step)).all()} == {"paused"}
    client.post(f"/waves/{wave.id}/resume")
    ctx.expire_all()
    assert {s.status for s in ctx.exec(select(Step)).all()} == {"pending"}
    client.post(f"/waves/{wave.id}/reschedule", data={
        "invite_at": _local(40), "add_members_at": _local(41),
        "announce_at": _local(42), "cutover_at": _local(50),
        "deadline": _local(60)})
    ctx.expire_all()
    cut = ctx.exec(select(Step).where(Step.kind == "cutover")).one()
    assert cut.due_at == cut.next_attempt_at == datetime.fromisoformat(_utc(50))
    events = ctx.exec(select(AuditEvent).where(AuditEvent.action.like("wave.%"))
                      .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["wave.create", "wave.pause", "wave.resume",
                                          "wave.reschedule"]
    assert _utc(50) in events[-1].summary


def test_coordinator_does_not_see_other_wave(client, ctx, make_org, make_group, make_user, login):
    mine, other = make_org(), make_org()
    g = make_group(other)
    admin = make_user("admin")
    from migrator.waves.service import create_wave

    start = datetime.fromisoformat(DATES["invite_at"])
    wave = create_wave("Other", [g.key], *(start + timedelta(days=i) for i in range(5)),
                       user=admin)
    ctx.commit()
    login(client, make_user("coordinator", orgs=[mine]))
    assert client.get(f"/waves/{wave.id}").status_code == 404
    assert "Other" not in client.get("/waves/").get_data(as_text=True)


def test_settings_not_for_auditors(client, ctx, make_user, login):
    login(client, make_user("auditor"))
    assert client.get("/waves/settings").status_code == 403


def test_settings_saved_footer_mandatory(client, ctx, make_user, login):
    client2 = client
    login(client2, make_user("admin"))
    form = {"offset_add_members_days": 5, "offset_announce_days": 9, "offset_cutover_days": 20,
            "offset_deadline_days": 27, "coverage_threshold": 85, "reminder_interval_days": 2,
            "max_reminders": 4, "announce_text": "Привет, {group}!", "footer": ""}
    resp = client2.post("/waves/settings", data=form)
    assert resp.status_code == 200 and 'aria-invalid="true"' in resp.get_data(as_text=True)
    form["footer"] = "Официальная переписка — только e-mail и СЭД."
    assert client2.post("/waves/settings", data=form).status_code == 302
    from migrator.waves.settings import get_setting

    get_session().expire_all()
    assert get_setting("coverage_threshold") == 85
    assert get_setting("footer") == form["footer"]


def test_wave_list_in_russian_with_filter(client, ctx, make_org, make_group, make_user, login):
    from migrator.waves.service import create_wave

    admin = make_user("admin")
    start = datetime.fromisoformat(DATES["invite_at"])
    create_wave("Первая волна", [make_group(make_org()).key],
                *(start + timedelta(days=i) for i in range(5)), user=admin)
    ctx.commit()
    login(client, admin)
    page = client.get("/waves/?status=planned").get_data(as_text=True)
    assert "Первая волна" in page and 'value="planned" selected' in page
    assert ">planned<" not in page  # labels are translated
    assert "Первая волна" not in client.get("/waves/?status=active").get_data(as_text=True)


def test_wave_page_figures_pagination_and_state_filter(client, ctx, make_org, make_group,
                                                       make_user, login):
    from migrator.waves.service import create_wave

    other, mine = make_org(), make_org()  # two roots: a region-wide wave, seen by everyone
    groups = [make_group(mine if i % 2 else other, key=f"wg{i:03d}") for i in range(60)]
    admin = make_user("admin")
    start = datetime.fromisoformat(DATES["invite_at"])
    wave = create_wave("Большая волна", [g.key for g in groups],
                       *(start + timedelta(days=i) for i in range(5)), user=admin)
    ctx.commit()
    steps = {(s.group_id, s.kind): s for s in ctx.exec(select(Step))}

    def mark(group, **statuses):
        for kind, status in statuses.items():
            steps[group.id, kind].status = status
            ctx.add(steps[group.id, kind])

    # wg000-wg004 failed, wg005-wg009 waiting, wg010-wg019 in progress, wg020-wg022 done.
    for g in groups[:5]:
        mark(g, invite="succeeded", add_members="failed")
    for g in groups[5:10]:
        mark(g, invite="succeeded", add_members="succeeded", announce="waiting")
    for g in groups[10:20]:
        mark(g, invite="succeeded", add_members="running")
    for g in groups[20:23]:
        mark(g, **{k: "succeeded" for k in ("invite", "add_members", "announce",
                                            "parallel_run")}, cutover="skipped")
    ctx.commit()

    login(client, admin)
    page = client.get(f"/waves/{wave.id}").get_data(as_text=True)
    cards = page[page.index('class="cards"'):page.index('id="groups"')]
    for label, n in (("Групп в волне", 60), ("с ошибкой в шаге", 5),
                     ("ждут подтверждения", 5), ("в работе", 10), ("не начаты", 37),
                     ("все шаги выполнены", 3)):
        assert f'{label}</div><div class="big">{n}</div>' in cards, label
    assert "wg049" in page and "wg050" not in page  # 50 per page, by key
    assert "Страница 1 из 2" in page
    second = client.get(f"/waves/{wave.id}?page=2").get_data(as_text=True)
    assert "wg050" in second and "wg059" in second and "wg049" not in second

    failed = client.get(f"/waves/{wave.id}?state=failed").get_data(as_text=True)
    rows = failed[failed.index("<tbody>"):failed.index("</tbody>")]
    assert rows.count("<tr") == 5 and "wg004" in rows and "wg005" not in rows
    assert '<option value="failed" selected>' in failed
    waiting = client.get(f"/waves/{wave.id}?state=waiting").get_data(as_text=True)
    rows = waiting[waiting.index("<tbody>"):waiting.index("</tbody>")]
    assert rows.count("<tr") == 5 and "wg005" in rows
    done = client.get(f"/waves/{wave.id}?state=done").get_data(as_text=True)
    rows = done[done.index("<tbody>"):done.index("</tbody>")]
    assert [f"wg{i:03d}" in rows for i in (20, 21, 22, 23)] == [True, True, True, False]
    # An unknown state shows every group.
    assert "wg049" in client.get(f"/waves/{wave.id}?state=bogus").get_data(as_text=True)

    # A coordinator of the sub-organisation counts and lists only their groups.
    client.post("/logout")
    login(client, make_user("coordinator", orgs=[mine]))
    page = client.get(f"/waves/{wave.id}?state=failed").get_data(as_text=True)
    cards = page[page.index('class="cards"'):page.index('id="groups"')]
    assert 'Групп в волне</div><div class="big">30</div>' in cards
    assert 'с ошибкой в шаге</div><div class="big">2</div>' in cards  # wg001, wg003
    rows = page[page.index("<tbody>"):page.index("</tbody>")]
    assert rows.count("<tr") == 2 and "wg001" in rows and "wg000" not in rows


def test_wave_page_reads_steps_of_one_page_only(client, ctx, make_org, make_group, make_user,
                                                login, app):
    from migrator.db import get_engine
    from migrator.waves.service import create_wave

    org = make_org()
    admin = make_user("admin")
    groups = [make_group(org, key=f"q{i:03d}") for i in range(120)]
    start = datetime.fromisoformat(DATES["invite_at"])
    wave = create_wave("W", [g.key for g in groups],
                       *(start + timedelta(days=i) for i in range(5)), user=admin)
    ctx.commit()
    login(client, admin)
    statements = []

    def count(conn, cursor, statement, params, context, executemany):
        if "FROM step" in statement and "GROUP BY" not in statement:
            statements.append(params)

    engine = get_engine(app)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/waves/{wave.id}").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1  # one query for the page's steps, no N+1
    params = statements[0]
    values = params.values() if isinstance(params, dict) else params
    assert sum(1 for v in values if isinstance(v, int)) <= 51  # the page's 50 groups + wave

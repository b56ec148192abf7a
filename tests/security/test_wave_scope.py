"""A wave shared by organisations without a common ancestor (``org_id`` NULL): a coordinator
sees it only if it holds one of their groups, sees only their groups in it, and may change
it only when their scope covers every group in it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from migrator.engine.models import Step
from migrator.waves.models import Wave
from migrator.waves.service import create_wave

TZ = ZoneInfo("Asia/Yekaterinburg")


@pytest.fixture
def shared(ctx, make_org, make_group, make_user):
    """Two unrelated organisations A and B share a wave; C has nothing in it."""
    a, b, c = make_org(code="A"), make_org(code="B"), make_org(code="C")
    ga, gb = make_group(a, key="grp-a"), make_group(b, key="grp-b")
    make_group(c, key="grp-c")
    start = (datetime.now(TZ) + timedelta(days=30)).replace(microsecond=0)
    wave = create_wave("Общая волна", [ga.key, gb.key],
                       *(start + timedelta(days=i) for i in range(5)), user=make_user("admin"))
    ctx.commit()
    assert wave.org_id is None
    return {"wave": wave, "a": a, "b": b, "c": c, "make_user": make_user}


def _steps(ctx, wave_id):
    ctx.expire_all()
    return {s.status for s in ctx.exec(select(Step).where(Step.wave_id == wave_id)).all()}


def test_an_outsider_neither_sees_nor_changes_a_shared_wave(shared, client, login, ctx):
    wave = shared["wave"]
    login(client, shared["make_user"]("coordinator", orgs=[shared["c"]]))
    assert client.get(f"/waves/{wave.id}").status_code == 404
    assert "Общая волна" not in client.get("/waves/").get_data(as_text=True)
    for action in ("pause", "resume", "reschedule"):
        assert client.post(f"/waves/{wave.id}/{action}").status_code == 404
    assert ctx.get(Wave, wave.id).status == "planned" and _steps(ctx, wave.id) == {"pending"}


def test_a_partner_sees_only_their_groups_and_cannot_change(shared, client, login, ctx):
    wave = shared["wave"]
    login(client, shared["make_user"]("coordinator", orgs=[shared["a"]]))
    html = client.get(f"/waves/{wave.id}").get_data(as_text=True)
    assert "grp-a" in html and "grp-b" not in html
    assert "Общая волна" in client.get("/waves/").get_data(as_text=True)
    assert f"/waves/{wave.id}/pause" not in html  # no buttons for what is refused
    assert client.post(f"/waves/{wave.id}/pause").status_code == 403
    ctx.expire_all()
    assert ctx.get(Wave, wave.id).status == "planned" and _steps(ctx, wave.id) == {"pending"}


def test_a_coordinator_covering_every_group_may_change(shared, client, login, ctx):
    wave = shared["wave"]
    login(client, shared["make_user"]("coordinator", orgs=[shared["a"], shared["b"]]))
    assert client.post(f"/waves/{wave.id}/pause").status_code == 302
    ctx.expire_all()
    assert ctx.get(Wave, wave.id).status == "paused" and _steps(ctx, wave.id) == {"paused"}

"""``flask demo seed``: idempotent small region; region scale with small numbers."""

from __future__ import annotations

import sqlalchemy as sa

from migrator.audit.models import AuditEvent
from migrator.audit.service import verify
from migrator.db import get_session
from migrator.engine.models import Step
from migrator.groups.models import GroupMember, SourceGroup
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.progress.models import ProgressSnapshot
from migrator.waves.models import Wave

TABLES = (Organisation, Employee, SourceGroup, GroupMember, Wave, Step, ProgressSnapshot)


def _counts(app) -> dict:
    with app.app_context():
        s = get_session()
        return {m.__name__: s.scalar(sa.select(sa.func.count()).select_from(m)) for m in TABLES}


def test_seed_twice_is_idempotent_and_admin_sees_the_region(app, runner, client):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "admin@example.org / demo-admin-2026" in first.output
    after_first = _counts(app)
    assert 80 <= after_first["Employee"] <= 150
    assert 15 <= after_first["SourceGroup"] <= 25
    assert after_first["ProgressSnapshot"] == after_first["Organisation"] * 31  # 30 days + today
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert _counts(app) == after_first

    with app.app_context():
        s = get_session()
        assert verify(s).ok
        actors = set(s.scalars(sa.select(AuditEvent.actor_type)).all())
        assert actors == {"system"}
        statuses = set(s.scalars(sa.select(Step.status)).all())
        assert {"succeeded", "failed", "waiting", "pending"} <= statuses
        assert s.scalar(sa.select(sa.func.count()).select_from(Employee)
                        .where(Employee.max_user_id.is_not(None))) > 0

    resp = client.post("/login", data={"email": "admin@example.org",
                                       "password": "demo-admin-2026"})
    assert resp.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "Правительство Северо-Уральской области" in html
    assert "Администрация Лесногорского городского округа" in html
    assert "<svg" in html
    attention = client.get("/attention").get_data(as_text=True)
    assert "SMTP 451" in attention and "настройки приватности в Max" in attention


def test_demo_coordinator_sees_only_their_municipality(app, runner, client):
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    resp = client.post("/login", data={"email": "coordinator@example.org",
                                       "password": "demo-coord-2026"})
    assert resp.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "Лесногорского" in html and "Реченск" not in html
    assert client.get("/?org=MO-REC").status_code == 404


def test_region_scale_with_small_numbers(app, runner):
    result = runner.invoke(args=[
        "demo", "seed", "--scale", "region", "--orgs", "40", "--groups", "80",
        "--employees", "400", "--memberships", "1600", "--audit-events", "3000", "--waves", "3"])
    assert result.exit_code == 0, result.output
    counts = _counts(app)
    small = 14
    assert counts["Organisation"] == small + 40
    with app.app_context():
        s = get_session()
        rs = s.scalar(sa.select(sa.func.count()).select_from(Employee)
                      .where(Employee.email.like("%.rs.example")))
        assert rs == 400
        groups = s.scalar(sa.select(sa.func.count()).select_from(SourceGroup)
                          .where(SourceGroup.key.like("rs-g%")))
        assert groups == 80
        members = s.scalar(sa.select(sa.func.count()).select_from(GroupMember)
                           .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
                           .where(SourceGroup.key.like("rs-g%")))
        assert 1200 <= members <= 2000
        # member_count is kept in step with the memberships
        assert s.scalar(sa.select(sa.func.sum(SourceGroup.member_count))
                        .where(SourceGroup.key.like("rs-g%"))) == members
        # every organisation's path is its parent's path plus its id
        bad = s.execute(sa.text(
            "SELECT c.code FROM organisation c JOIN organisation p ON p.id = c.parent_id "
            "WHERE c.path <> p.path || CAST(c.id AS VARCHAR) || '/' "
            "OR c.depth <> p.depth + 1")).all()
        assert bad == []
        result = verify(s)
        assert result.ok, result
        assert result.checked >= 3000
        # New rows get fresh ids after the bulk insert (sequences moved on PostgreSQL).
        from migrator.org.service import save_organisation

        org = save_organisation("NEW-ORG", "Новая организация", "RS-M001")
        s.commit()
        assert org.path.endswith(f"/{org.id}/") and org.depth == 2
    again = runner.invoke(args=["demo", "seed", "--scale", "region", "--orgs", "40"])
    assert "already present" in again.output
    assert _counts(app)["Organisation"] == small + 40 + 1

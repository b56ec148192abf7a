"""Figures, snapshots and digest rows on a hand-made tree with known numbers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from migrator.mail.templates import row_label
from migrator.progress import service
from migrator.progress.models import ProgressSnapshot


def test_region_figures_are_exact(tree, make_user):
    admin = make_user("admin")
    fig = service.figures(tree.r, admin)
    assert (fig.employees, fig.linked, fig.linked_pct) == (9, 3, 33.3)
    assert (fig.groups_total, fig.groups_linked, fig.groups_done, fig.groups_attention) == (
        3, 2, 1, 1)
    assert (fig.members_total, fig.members_in_chat) == (7, 1)
    assert fig.overdue_steps == 1 and fig.overdue_waves == 1 and fig.overdue == 2
    assert fig.chats == {"discovered": 0, "linked": 2, "removed": 1}
    assert fig.chats_missing_rights == 1
    assert fig.steps["cutover"]["succeeded"] == 1
    assert fig.steps["announce"]["waiting"] == 1
    assert fig.steps["invite"]["failed"] == 1
    assert fig.groups_unplanned == 1
    assert [(w["name"], w["groups"], w["done"], w["overdue"]) for w in fig.waves] == [
        ("Волна Б", 1, 0, True), ("Волна W", 1, 1, False)]
    assert fig.waves[1]["days_left"] == 5

    rows = {r.org.code: r for r in fig.children}
    assert list(rows) == ["A", "B"]  # by name: Ведомство А, Ведомство Б
    a, b = rows["A"], rows["B"]
    assert (a.employees, a.linked, a.groups_total, a.groups_linked, a.groups_done) == (
        5, 3, 2, 2, 1)
    assert (a.members_total, a.members_in_chat, a.overdue_steps) == (4, 1, 0)
    assert a.deadline == tree.wave.deadline and a.days_left == 5
    assert (b.employees, b.linked, b.groups_total, b.members_total, b.overdue_steps) == (
        4, 0, 1, 3, 1)
    assert b.days_left == -3


def test_subtree_figures_and_leaf(tree, make_user):
    admin = make_user("admin")
    fig = service.figures(tree.a, admin)
    assert (fig.employees, fig.linked, fig.members_total) == (5, 3, 4)
    assert [c.org.code for c in fig.children] == ["A1"]
    assert (fig.children[0].employees, fig.children[0].linked) == (2, 1)
    assert fig.chats == {"discovered": 0, "linked": 2, "removed": 0}
    leaf = service.figures(tree.a1, admin)
    assert (leaf.employees, leaf.groups_done, leaf.children) == (2, 1, [])


def test_whole_scope_without_org_matches_the_root(tree, make_user):
    admin = make_user("admin")
    everything = service.figures(None, admin)
    assert (everything.employees, everything.linked, everything.members_in_chat) == (9, 3, 1)
    assert [c.org.code for c in everything.children] == ["R"]


def test_coordinator_figures_cover_only_their_scope(tree, make_user):
    coord = make_user("coordinator", orgs=[tree.a])
    fig = service.figures(None, coord)
    assert (fig.employees, fig.linked, fig.groups_total) == (5, 3, 2)
    assert [c.org.code for c in fig.children] == ["A"]
    assert fig.chats["removed"] == 0 and fig.overdue_waves == 0
    assert [w["name"] for w in fig.waves] == ["Волна W"]


def test_snapshots_upsert_and_match_figures(tree, make_user, ctx):
    admin = make_user("admin")
    assert service.take_snapshots() == 4
    assert service.take_snapshots() == 4  # same day again: replaced, not duplicated
    today = service.local_today()
    snaps = {s.org_id: s for s in ctx.exec(select(ProgressSnapshot)).all()}
    assert len(snaps) == 4 and {s.day for s in snaps.values()} == {today}
    fig = service.figures(tree.r, admin)
    root = snaps[tree.r.id]
    assert (root.employees, root.linked, root.groups_total, root.groups_done,
            root.members_total, root.members_in_chat) == (
        fig.employees, fig.linked, fig.groups_total, fig.groups_done, fig.members_total,
        fig.members_in_chat)
    assert (snaps[tree.b.id].employees, snaps[tree.a1.id].linked) == (4, 1)


def test_past_day_snapshot_is_as_of_that_day(tree, ctx):
    day = service.local_today() - timedelta(days=2)
    service.take_snapshots(day)
    root = ctx.get(ProgressSnapshot, (tree.r.id, day))
    # Linked 3 days and 2 days ago count; linked an hour ago does not; the cutover
    # finished 20 hours ago does not; groups created today do not exist yet.
    assert (root.employees, root.linked, root.groups_done, root.groups_total) == (9, 2, 0, 0)
    assert ctx.scalar(sa.select(sa.func.count()).select_from(ProgressSnapshot)) == 4


def test_history_sums_snapshots_in_order(tree, make_user):
    admin = make_user("admin")
    today = service.local_today()
    for back in (2, 1, 0):
        service.take_snapshots(today - timedelta(days=back))
    hist = service.history(tree.r, admin)
    assert [h["day"] for h in hist] == [today - timedelta(days=2), today - timedelta(days=1),
                                        today]
    assert hist[-1]["linked"] == 3 and hist[-1]["linked_pct"] == 33.3
    coord_hist = service.history(tree.b, admin)
    assert coord_hist[-1]["employees"] == 4 and coord_hist[-1]["linked_pct"] == 0.0


def test_digest_rows_use_the_same_figures(tree, make_user):
    admin = make_user("admin")
    rows = service.digest_rows(admin)
    assert rows[0]["employees"] == 9 and rows[0]["overdue_waves"] == 1
    assert [(r["org_code"], r["own"]) for r in rows[1:]] == [("R", True), ("A", False),
                                                             ("B", False)]
    assert sum(r["employees"] for r in rows[1:]) == rows[0]["employees"]
    assert row_label(rows[1]) == "Регион: собственные сотрудники и группы"
    assert rows[2]["linked_pct"] == 60.0 and rows[3]["overdue_steps"] == 1
    coord = make_user("coordinator", orgs=[tree.a])
    rows = service.digest_rows(coord)
    assert rows[0]["employees"] == 5
    assert [r["org_code"] for r in rows[1:]] == ["A", "A1"]  # A's own row, then A1
    assert all(r["org_code"] != "B" for r in rows)


def test_empty_database_figures(ctx, make_user):
    admin = make_user("admin")
    fig = service.figures(None, admin)
    assert (fig.employees, fig.linked_pct, fig.children, fig.waves) == (0, None, [], [])
    assert service.take_snapshots() == 0


def test_report_rows_in_tree_order_and_limited_levels(tree, make_user):
    admin = make_user("admin")
    rows = service.report_rows(tree.r, admin)
    assert [r.org.code for r in rows] == ["R", "R", "A", "A1", "B"]
    assert rows[0].employees == rows[1].employees == 9
    own = service.report_rows(tree.r, admin, own=True)  # the report's: R's own row
    assert [r.org.code for r in own] == ["R", "R", "A", "A1", "B"]
    assert own[1].own and own[1].employees == 0 and own[2].employees == 5
    short = service.report_rows(tree.r, admin, levels=1)
    assert [r.org.code for r in short] == ["R", "R", "A", "B"]
    assert short[2].employees == 5  # A still counts A1's people


def test_days_left_count_in_the_configured_zone(app):
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # 15:00 in Yekaterinburg
    late_evening_utc = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 01:00 next day there
    with app.app_context():
        assert app.config["MIGRATOR_TZ"] == "Asia/Yekaterinburg"
        assert service.days_left(late_evening_utc, now) == 1
        # 22:00 UTC the day before is 03:00 today there: not yet overdue by a day
        assert service.days_left(now - timedelta(hours=12), now) == 0
        assert service.local_today(datetime(2026, 11, 25, 19, 30, tzinfo=UTC)).day == 26


def test_paused_steps_are_not_overdue(tree, make_user, ctx):
    from migrator.engine.models import Step

    admin = make_user("admin")
    g_a = tree.groups[0]
    long_ago = tree.now - timedelta(days=9)
    ctx.add(Step(group_id=g_a.id, wave_id=tree.wave.id, kind="invite", status="paused",
                 due_at=long_ago, next_attempt_at=long_ago))
    ctx.add(Step(group_id=g_a.id, wave_id=tree.wave.id, kind="add_members", status="due",
                 due_at=long_ago, next_attempt_at=long_ago))
    ctx.commit()
    fig = service.figures(tree.r, admin)
    assert fig.overdue_steps == 2  # B's failed invite and A's due step; not the paused one
    assert {r.org.code: r.overdue_steps for r in fig.children} == {"A": 1, "B": 1}

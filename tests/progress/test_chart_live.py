"""The chart's point for today shows the live figures, like the cards next to it."""

from migrator.progress import service


def test_todays_point_is_live_not_the_morning_snapshot(ctx, make_org, make_employee, make_user):
    org = make_org(code="EDU")
    emps = [make_employee(org) for _ in range(4)]
    admin = make_user("admin")
    service.take_snapshots()  # this morning: nobody linked
    ctx.commit()
    emps[0].max_user_id, emps[1].max_user_id = 501, 502
    ctx.add_all(emps[:2])
    ctx.commit()
    fig = service.figures(org, admin)
    stored = service.history(org, admin)
    assert stored[-1]["linked"] == 0
    points = service.with_live_today(stored, fig)
    assert len(points) == len(stored)
    assert points[-1]["day"] == service.local_today()
    assert (points[-1]["linked"], points[-1]["linked_pct"]) == (2, 50.0)

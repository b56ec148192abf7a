"""The panels on the group page: steps (timeline, controls, dry-run preview) and undoing
the group's move."""

from __future__ import annotations

from flask_login import current_user

from migrator.auth.service import can_write
from migrator.core.panels import register_panel
from migrator.db import get_session, utcnow
from migrator.engine import rollback
from migrator.engine.control import group_steps, preview
from migrator.groups.service import coverage, member_state_counts
from migrator.waves.models import Wave
from migrator.waves.settings import get_setting


def _refused(counts: dict[str, int]) -> int:
    return counts["unaddable"] + counts["invited_by_link"]


def steps_context(group) -> dict:
    steps = group_steps(group)
    wave = get_session().get(Wave, group.wave_id) if group.wave_id else None
    in_chat, total = coverage(group)
    return {
        "group": group,
        "steps": steps,
        "wave": wave,
        "preview": preview(group) if steps else [],
        "in_chat": in_chat,
        "total": total,
        "threshold": get_setting("coverage_threshold"),
        # people Max refused for good: the add step is "done with errors" while any wait
        "member_errors": _refused(member_state_counts(group)) if steps else 0,
        "can_write": can_write(),
        "is_admin": current_user.is_authenticated and current_user.role == "admin",
        "now": utcnow(),
    }


register_panel("group", "engine/_steps.html", steps_context, order=20)


def rollback_context(group) -> dict:
    rb = rollback.latest(group)
    planned, handled = rollback.progress(rb) if rb else (0, 0)
    can_undo = False
    if can_write():
        try:
            rollback.check(group, current_user)
            can_undo = True
        except rollback.RollbackRefused:
            pass
    return {"group": group, "rb": rb, "planned": planned, "handled": handled,
            "can_undo": can_undo}


register_panel("group", "engine/_rollback.html", rollback_context, order=25)

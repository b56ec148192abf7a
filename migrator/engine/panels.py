"""The steps panel on the group page (timeline, controls, dry-run preview)."""

from __future__ import annotations

from flask_login import current_user

from migrator.auth.service import can_write
from migrator.core.panels import register_panel
from migrator.db import get_session, utcnow
from migrator.engine.control import group_steps, preview
from migrator.groups.service import coverage, member_state_counts
from migrator.waves.models import Wave
from migrator.waves.settings import get_setting


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
        "unaddable": member_state_counts(group)["unaddable"] if steps else 0,
        "can_write": can_write(),
        "is_admin": current_user.is_authenticated and current_user.role == "admin",
        "now": utcnow(),
    }


register_panel("group", "engine/_steps.html", steps_context, order=20)

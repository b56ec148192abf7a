"""Region-wide settings (step offsets, coverage threshold, reminders, announcement wording).

Stored as JSON in the ``setting`` table; anything not stored falls back to :data:`DEFAULTS`.
"""

from __future__ import annotations

import json

from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.waves.models import Setting

DEFAULT_ANNOUNCE_TEXT = (
    "Добро пожаловать в рабочий чат «{group}» в Max!\n\n"
    "Этот чат заменяет группу «{group}» в {platform}. Правила:\n"
    "1. Здесь — только оперативное рабочее общение.\n"
    "2. Уважайте коллег, не пересылайте посторонние материалы.\n"
    "3. Не публикуйте персональные данные граждан."
)
DEFAULT_FOOTER = (
    "Официальная переписка по-прежнему ведётся по электронной почте и в СЭД; "
    "Max используется только для оперативного общения."
)

DEFAULTS: dict[str, object] = {
    "offset_add_members_days": 7,
    "offset_announce_days": 10,
    "offset_cutover_days": 21,
    "offset_deadline_days": 28,
    "coverage_threshold": 90,  # per cent of the group's members in the Max chat
    "reminder_interval_days": 3,
    "max_reminders": 3,
    "announce_text": DEFAULT_ANNOUNCE_TEXT,
    "footer": DEFAULT_FOOTER,
}


def get_setting(key: str):
    row = get_session().get(Setting, key)
    if row is None:
        return DEFAULTS.get(key)
    try:
        return json.loads(row.value)
    except ValueError:
        return DEFAULTS.get(key)


def all_settings() -> dict:
    return {key: get_setting(key) for key in DEFAULTS}


def save_settings(values: dict) -> dict:
    """Store changed settings (audited with before/after); not committed. Returns changes."""
    session = get_session()
    changes = {}
    for key, value in values.items():
        if key not in DEFAULTS:
            raise KeyError(key)
        before = get_setting(key)
        if before == value:
            continue
        row = session.get(Setting, key) or Setting(key=key, value="null")
        row.value = json.dumps(value, ensure_ascii=False)
        row.updated_at = utcnow()
        session.add(row)
        # Wording can be long: the audit keeps which keys changed, numbers with values.
        if isinstance(value, int | float):
            changes[key] = {"before": before, "after": value}
        else:
            changes[key] = {"changed": True}
    if changes:
        record("settings.update", object_type="setting", summary=changes)
    return changes

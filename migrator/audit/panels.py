"""The "History" panel on group, chat, wave, employee and organisation pages."""

from __future__ import annotations

from flask import url_for
from flask_login import current_user

from migrator.audit import query
from migrator.audit.query import AuditFilter
from migrator.core.panels import register_panel

HISTORY_SIZE = 20
# Besides the row id, events may name an object by its natural key.
NATURAL_KEYS = {"group": "key", "chat": "chat_id", "organisation": "code", "employee": "email"}


def object_history(object_type: str, object_ids, limit: int = HISTORY_SIZE) -> list:
    """The latest events about one object (any of its ids), within the user's scope."""
    found: set[int] = set()
    for object_id in dict.fromkeys(str(i) for i in object_ids if i is not None):
        p = query.plan(AuditFilter(object_type=object_type, object_id=object_id), current_user)
        found.update(query.seqs(p, limit=limit))
    return query.load(sorted(found, reverse=True)[:limit])


def history_context(object_type: str):
    def context(obj) -> dict:
        ids = [obj.id]
        key_attr = NATURAL_KEYS.get(object_type)
        if key_attr and getattr(obj, key_attr, None) is not None:
            ids.append(getattr(obj, key_attr))
        return {
            "audit_events": object_history(object_type, ids),
            "audit_url": url_for("audit.events", object_type=object_type, object_id=obj.id),
        }

    return context


for _type in ("group", "chat", "wave", "employee", "organisation"):
    register_panel(_type, "audit/_history.html", history_context(_type), order=90)

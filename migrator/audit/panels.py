"""The "History" panel on group, chat, wave, employee and organisation pages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask_login import current_user

from migrator.audit import query
from migrator.audit.query import AuditFilter
from migrator.core.panels import register_panel
from migrator.db import get_session
from migrator.engine.models import Step

HISTORY_SIZE = 20
# Events name an object by its row id or by a natural key, under one of these types.
OBJECT_TYPES = {"group": ("group",), "chat": ("chat", "max_chat"), "wave": ("wave",),
                "employee": ("employee",), "organisation": ("organisation",)}
NATURAL_KEYS = {"group": "key", "chat": "chat_id", "organisation": "code", "employee": "email"}


def object_ids(kind: str, obj) -> list[str]:
    ids = [obj.id]
    key_attr = NATURAL_KEYS.get(kind)
    if key_attr and getattr(obj, key_attr, None) is not None:
        ids.append(getattr(obj, key_attr))
    return list(dict.fromkeys(str(i) for i in ids if i is not None))


def object_history(targets: list[tuple[tuple[str, ...], list[str]]],
                   limit: int = HISTORY_SIZE) -> list:
    """The latest events about any of ``(object types, ids)``, within the user's scope."""
    found: set[int] = set()
    for types, ids in targets:
        if not ids:
            continue
        f = AuditFilter(object_type=",".join(types), object_id=",".join(ids))
        found.update(query.seqs(query.plan(f, current_user), limit=limit))
    return query.load(sorted(found, reverse=True)[:limit])


def history_context(kind: str):
    def context(obj) -> dict:
        ids = object_ids(kind, obj)
        targets = [(OBJECT_TYPES[kind], ids)]
        if kind == "group":  # and its steps' events (step ids)
            step_ids = get_session().scalars(sa.select(Step.id).where(Step.group_id == obj.id))
            targets.append((("step",), [str(i) for i in step_ids]))
        return {
            "audit_events": object_history(targets),
            "audit_url": url_for("audit.events", object_type=",".join(OBJECT_TYPES[kind]),
                                 object_id=",".join(ids)),
        }

    return context


for _kind in OBJECT_TYPES:
    register_panel(_kind, "audit/_history.html", history_context(_kind), order=90)

"""The "History" panel on group, chat, wave, employee and organisation pages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import request, url_for
from flask_login import current_user

from migrator.audit import query
from migrator.audit.labels import TECHNICAL_ACTIONS
from migrator.audit.query import AuditFilter
from migrator.core.panels import register_panel
from migrator.db import get_session
from migrator.engine.models import Step

HISTORY_SIZE = 20
HISTORY_ARG = "history"  # ?history=all: the technical events too
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
                   limit: int = HISTORY_SIZE, technical: bool = True) -> list:
    """The latest events about any of ``(object types, ids)``, within the user's scope;
    without the runner's and the transport's bookkeeping unless ``technical``."""
    found: set[int] = set()
    for types, ids in targets:
        if not ids:
            continue
        f = AuditFilter(object_type=",".join(types), object_id=",".join(ids))
        p = query.plan(f, current_user)
        if not technical:
            p.conditions.append(query.T.c.action.not_in(TECHNICAL_ACTIONS))
        found.update(query.seqs(p, limit=limit))
    return query.load(sorted(found, reverse=True)[:limit])


def _toggle_url(technical: bool) -> str:
    """This page with the history's technical events shown or hidden (no JavaScript)."""
    args = request.args.to_dict()
    args.pop(HISTORY_ARG, None)
    if not technical:
        args[HISTORY_ARG] = "all"
    return url_for(request.endpoint, **(request.view_args or {}), **args) + "#audit-history"


def history_context(kind: str):
    def context(obj) -> dict:
        ids = object_ids(kind, obj)
        targets = [(OBJECT_TYPES[kind], ids)]
        if kind == "group":  # and its steps' events (step ids)
            step_ids = get_session().scalars(sa.select(Step.id).where(Step.group_id == obj.id))
            targets.append((("step",), [str(i) for i in step_ids]))
        technical = request.args.get(HISTORY_ARG) == "all"
        return {
            "audit_events": object_history(targets, technical=technical),
            "audit_technical": technical,
            "audit_toggle_url": _toggle_url(technical),
            "audit_url": url_for("audit.events", object_type=",".join(OBJECT_TYPES[kind]),
                                 object_id=",".join(ids)),
        }

    return context


for _kind in OBJECT_TYPES:
    register_panel(_kind, "audit/_history.html", history_context(_kind), order=90)

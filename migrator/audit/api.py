"""``GET /api/v1/audit``: the audit trail for scripts, in seq order, with a cursor."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, jsonify, request
from flask_login import current_user

from migrator.api import api_error, bp, describe, token_required
from migrator.audit import query
from migrator.audit.query import AuditFilter
from migrator.core.params import parse_int
from migrator.db import get_session

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def _since_to_seq(raw: str) -> int | None:
    """``since`` as the seq to continue after: a seq number, or an ISO 8601 time."""
    raw = raw.strip()
    if not raw:
        return 0
    if raw.isascii() and raw.isdigit():
        return parse_int(raw)  # None (400) beyond any seq
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["MIGRATOR_TZ"]))
    first = query.first_seq_since(moment)
    if first is None:  # nothing yet: continue after the newest event
        return get_session().scalar(sa.select(sa.func.max(query.T.c.seq))) or 0
    return first - 1


@bp.get("/audit")
@token_required
def audit_events():
    since = _since_to_seq(request.args.get("since", ""))
    if since is None:
        return api_error(400, "bad_since", "since must be an event seq or an ISO 8601 time.")
    limit = parse_int(request.args.get("limit", DEFAULT_LIMIT), 1, MAX_LIMIT)
    if limit is None:
        return api_error(400, "bad_limit", f"limit must be between 1 and {MAX_LIMIT}.")
    f = AuditFilter.from_args(request.args)
    if f.errors:
        return api_error(400, "bad_date", "from/to must be dates (YYYY-MM-DD).", f.errors)
    p = query.plan(f, current_user)
    found = query.seqs(p, above=since, ascending=True, limit=limit + 1)
    has_more = len(found) > limit
    events = query.load(found[:limit], ascending=True)
    return jsonify({
        "events": [query.event_dict(ev) for ev in events],
        "next": events[-1].seq if events else since,
        "has_more": has_more,
    })


_EVENT = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "description": "Position in the hash chain"},
        "created_at": {"type": "string", "format": "date-time"},
        "actor_type": {"type": "string", "enum": ["user", "job", "max", "system"]},
        "actor_id": {"type": "string", "nullable": True},
        "actor_label": {"type": "string", "nullable": True},
        "action": {"type": "string", "example": "group.link"},
        "object_type": {"type": "string", "nullable": True},
        "object_id": {"type": "string", "nullable": True},
        "org_id": {"type": "integer", "nullable": True},
        "summary": {"type": "object"},
        "request_id": {"type": "string", "nullable": True},
        "client_ip": {"type": "string", "nullable": True},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string", "description": "SHA-256 of the canonical content"},
    },
}

_param = {"in": "query", "required": False}
describe("/audit", "get", {
    "summary": "Audit events after a cursor, oldest first (within the caller's scope)",
    "parameters": [
        {**_param, "name": "since", "schema": {"type": "string"},
         "description": "An event seq (events after it) or an ISO 8601 time (events at or "
                        "after it). Pass the previous answer's `next` to continue."},
        {**_param, "name": "limit", "schema": {"type": "integer", "minimum": 1,
                                               "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        {**_param, "name": "action", "schema": {"type": "string"},
         "description": "Action prefix, e.g. `step.`"},
        {**_param, "name": "actor", "schema": {"type": "string"},
         "description": "User e-mail or job name"},
        {**_param, "name": "org", "schema": {"type": "string"},
         "description": "Organisation code (with its subtree)"},
        {**_param, "name": "object_type", "schema": {"type": "string"}},
        {**_param, "name": "object_id", "schema": {"type": "string"}},
        {**_param, "name": "from", "schema": {"type": "string", "format": "date"}},
        {**_param, "name": "to", "schema": {"type": "string", "format": "date"}},
    ],
    "responses": {
        "200": {"description": "A page of events", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/AuditPage"}}}},
        "400": {"description": "Bad parameter", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Error"}}}},
        "401": {"description": "No or bad token"},
    },
}, {
    "AuditEvent": _EVENT,
    "AuditPage": {"type": "object", "required": ["events", "next", "has_more"], "properties": {
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
        "next": {"type": "integer", "description": "The `since` for the next call"},
        "has_more": {"type": "boolean"},
    }},
})

"""``GET /api/v1/progress?org=CODE``: the dashboard's figures as JSON (same numbers)."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from migrator.api import api_error, bp, describe, token_required
from migrator.auth.service import can_see_org
from migrator.org.service import get_by_code
from migrator.progress import service


@bp.get("/progress")
@token_required
def progress():
    code = (request.args.get("org") or "").strip()
    org = None
    if code:
        org = get_by_code(code)
        if org is None or not can_see_org(org):
            return api_error(404, "not_found", f"No organisation {code!r} in your scope.")
    if org is None:  # a single top organisation is the starting node, as on the dashboard
        tops = service.top_orgs(current_user)
        org = tops[0] if len(tops) == 1 else None
    fig = service.figures(org, current_user)
    data = fig.as_dict()
    data["as_of"] = service.local_today().isoformat()
    return jsonify(data)


_COUNTS = {name: {"type": "integer"} for name in service.COUNTERS}
_ROW = {
    "type": "object",
    "properties": {
        "org_code": {"type": "string", "nullable": True},
        "org_name": {"type": "string", "nullable": True},
        **_COUNTS,
        "linked_pct": {"type": "number", "nullable": True},
        "coverage_pct": {"type": "number", "nullable": True},
        "done_pct": {"type": "number", "nullable": True},
        "deadline": {"type": "string", "format": "date-time", "nullable": True},
        "days_left": {"type": "integer", "nullable": True},
    },
}

describe("/progress", "get", {
    "summary": "Progress figures of an organisation's subtree (or of your whole scope)",
    "description": "Employees linked to Max, groups linked and cut over, members in the Max "
                   "chats, steps by kind and status, chats, open waves and deadlines, and one "
                   "row per child organisation. The same figures as the dashboard.",
    "parameters": [{"name": "org", "in": "query", "required": False,
                    "description": "Organisation code; omitted: everything you may see",
                    "schema": {"type": "string"}}],
    "responses": {
        "200": {"description": "Figures", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Progress"}}}},
        "401": {"description": "No or bad token", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}},
        "404": {"description": "Unknown organisation or outside your scope",
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}},
    },
}, {
    "ProgressRow": _ROW,
    "Progress": {
        "allOf": [{"$ref": "#/components/schemas/ProgressRow"}, {
            "type": "object",
            "properties": {
                "as_of": {"type": "string", "format": "date"},
                "steps": {"type": "object", "description": "kind → status → number of groups",
                          "additionalProperties": {"type": "object", "additionalProperties":
                                                   {"type": "integer"}}},
                "groups_unplanned": {"type": "integer"},
                "chats": {"type": "object", "additionalProperties": {"type": "integer"}},
                "chats_missing_rights": {"type": "integer"},
                "overdue_waves": {"type": "integer"},
                "waves": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"},
                    "status": {"type": "string"},
                    "deadline": {"type": "string", "format": "date-time"},
                    "days_left": {"type": "integer"}, "groups": {"type": "integer"},
                    "done": {"type": "integer"}, "overdue": {"type": "boolean"}}}},
                "children": {"type": "array",
                             "items": {"$ref": "#/components/schemas/ProgressRow"}},
            },
        }],
    },
})

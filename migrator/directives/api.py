"""``POST /api/v1/directives``, ``GET /api/v1/directives/{id}/progress`` and
``PUT /api/v1/orgs/{code}/transition-act``."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from migrator.api import api_error, bp, describe, token_required, write_required
from migrator.auth.service import can_see_org
from migrator.db import get_session
from migrator.directives import register, service
from migrator.directives.models import EXEMPTIONS, METRICS, Directive
from migrator.org.models import Organisation
from migrator.org.service import get_by_code


def _errors(exc: service.DirectiveError):
    return api_error(422, "invalid", "The request has invalid fields.",
                     {k: str(v) for k, v in exc.errors.items()})


def directive_dict(directive: Directive) -> dict:
    scope = get_session().get(Organisation, directive.scope_org_id)
    return {
        "id": directive.id, "title": directive.title, "issued_by": directive.issued_by,
        "issued_at": directive.issued_at.isoformat(),
        "scope_org": scope.code if scope else None,
        "milestones": [{"id": m.id, "metric": m.metric, "target_percent": m.target_percent,
                        "due": m.due.isoformat()} for m in service.milestones(directive)],
    }


@bp.post("/directives")
@write_required
def create_directive():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return api_error(400, "bad_request", "A JSON object is required.")
    try:
        directive = service.create_directive(data, current_user)
    except service.DirectiveError as exc:
        get_session().rollback()
        return _errors(exc)
    get_session().commit()
    return jsonify(directive_dict(directive)), 201


@bp.get("/directives/<int:directive_id>/progress")
@token_required
def directive_progress(directive_id: int):
    directive = get_session().get(Directive, directive_id)
    if not service.visible(directive, current_user):
        return api_error(404, "not_found", f"No directive {directive_id} in your scope.")
    code = (request.args.get("org") or "").strip()
    org = None
    if code:
        org = get_by_code(code)
        if org is None or not service.in_scope(directive, org, current_user):
            return api_error(404, "not_found",
                             f"No organisation {code!r} in this directive's scope and yours.")
    rows = service.progress(directive, current_user, org=org)
    return jsonify({
        "directive": directive_dict(directive),
        "as_of": service.local_today().isoformat(),
        "organisations": [{
            "org_code": r.org.code, "org_name": r.org.name, "status": r.status,
            "milestones": [m.as_dict() for m in r.milestones],
        } for r in rows],
    })


@bp.put("/orgs/<code>/transition-act")
@write_required
def put_transition_act(code: str):
    org = get_by_code(code)
    if org is None or not can_see_org(org):
        return api_error(404, "not_found", f"No organisation {code!r} in your scope.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return api_error(400, "bad_request", "A JSON object is required.")
    values, errors = register.check_act(
        data.get("act_number") if isinstance(data.get("act_number"), str) else None,
        data.get("act_date") if isinstance(data.get("act_date"), str) else None,
        data.get("exemption") if isinstance(data.get("exemption"), str) else None,
        data.get("exemption_reason") if isinstance(data.get("exemption_reason"), str)
        else None)
    if errors:
        return _errors(service.DirectiveError(errors))
    act, _changed = register.save_act(org, values, current_user)
    get_session().commit()
    return jsonify(register.act_dict(act, org))


_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_DATE = {"type": "string", "format": "date"}
_MILESTONE_IN = {"type": "object", "required": ["metric", "target_percent", "due"],
                 "properties": {"metric": {"type": "string", "enum": list(METRICS)},
                                "target_percent": {"type": "number", "minimum": 0,
                                                   "exclusiveMinimum": True, "maximum": 100},
                                "due": _DATE}}

describe("/directives", "post", {
    "summary": "Record a directive with its milestones",
    "description": "A directive covers an organisation subtree (`scope_org`, in your scope) "
                   "and has milestones: a metric (heads: heads of organisations linked to "
                   "Max; employees: employees linked; members: members in their Max chats; "
                   "groups: source groups switched), a target percentage and a due date "
                   "after the directive's date. Admins and coordinators.",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/DirectiveIn"}}}},
    "responses": {
        "201": {"description": "Recorded", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Directive"}}}},
        "400": {"description": "Not a JSON object", **_ERR},
        "401": {"description": "No or bad token", **_ERR},
        "403": {"description": "Your role may not change anything", **_ERR},
        "422": {"description": "Invalid fields (details: field → reason)", **_ERR},
    },
}, {
    "DirectiveIn": {"type": "object",
                    "required": ["title", "issued_by", "issued_at", "scope_org", "milestones"],
                    "properties": {"title": {"type": "string", "maxLength": 500},
                                   "issued_by": {"type": "string", "maxLength": 300},
                                   "issued_at": _DATE, "scope_org": {"type": "string"},
                                   "milestones": {"type": "array", "minItems": 1,
                                                  "items": _MILESTONE_IN}}},
    "Directive": {"type": "object", "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"},
        "issued_by": {"type": "string"}, "issued_at": _DATE,
        "scope_org": {"type": "string"},
        "milestones": {"type": "array", "items": {"allOf": [
            _MILESTONE_IN, {"type": "object", "properties": {"id": {"type": "integer"}}}]}}}},
})

describe("/directives/{id}/progress", "get", {
    "summary": "Plan against fact of a directive, per organisation",
    "description": "For every organisation of the directive's scope that you see (or of the "
                   "subtree of `org`): each milestone's plan (the straight line from the "
                   "directive's date to the target on the due date), fact, status "
                   "(`on_track`, `behind`, `done`, `no_data`) and days left. The figures are "
                   "the dashboard's.",
    "parameters": [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "org", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Organisation code: only its subtree"}],
    "responses": {
        "200": {"description": "Progress", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/DirectiveProgress"}}}},
        "401": {"description": "No or bad token", **_ERR},
        "404": {"description": "Unknown directive or organisation, or outside your scope",
                **_ERR},
    },
}, {
    "DirectiveProgress": {"type": "object", "properties": {
        "directive": {"$ref": "#/components/schemas/Directive"},
        "as_of": _DATE,
        "organisations": {"type": "array", "items": {"type": "object", "properties": {
            "org_code": {"type": "string"}, "org_name": {"type": "string"},
            "status": {"type": "string", "enum": list(service.STATUS_LABELS)},
            "milestones": {"type": "array", "items": {"type": "object", "properties": {
                "milestone_id": {"type": "integer"},
                "metric": {"type": "string", "enum": list(METRICS)},
                "target_percent": {"type": "number"}, "due": _DATE,
                "plan_percent": {"type": "number"},
                "fact_percent": {"type": "number", "nullable": True},
                "done": {"type": "integer"}, "total": {"type": "integer"},
                "status": {"type": "string", "enum": list(service.STATUS_LABELS)},
                "days_left": {"type": "integer"}}}}}}},
    }},
})

describe("/orgs/{code}/transition-act", "put", {
    "summary": "Set an organisation's entry in the register of transition orders",
    "description": "Either its internal act (`act_number`, `act_date`) or an exemption "
                   "(`exemption`: arm_gs, departmental or other, with `exemption_reason`; "
                   "required for other). Scans are uploaded on the organisation's page.",
    "parameters": [{"name": "code", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "act_number": {"type": "string", "maxLength": 100}, "act_date": _DATE,
            "exemption": {"type": "string", "enum": list(EXEMPTIONS)},
            "exemption_reason": {"type": "string", "maxLength": 500}}}}}},
    "responses": {
        "200": {"description": "The register entry", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/TransitionAct"}}}},
        "400": {"description": "Not a JSON object", **_ERR},
        "401": {"description": "No or bad token", **_ERR},
        "403": {"description": "Your role may not change anything", **_ERR},
        "404": {"description": "Unknown organisation or outside your scope", **_ERR},
        "422": {"description": "Invalid fields (details: field → reason)", **_ERR},
    },
}, {
    "TransitionAct": {"type": "object", "properties": {
        "org_code": {"type": "string"},
        "act_number": {"type": "string", "nullable": True},
        "act_date": {"type": "string", "format": "date", "nullable": True},
        "exemption": {"type": "string", "nullable": True},
        "exemption_reason": {"type": "string", "nullable": True},
        "has_scan": {"type": "boolean"},
        "scan_sha256": {"type": "string", "nullable": True},
        "updated_at": {"type": "string", "format": "date-time", "nullable": True}}},
})

"""API: ``POST /employees/{id}/unlink``: unbind an employee's Max account."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from migrator.api import api_error, bp, describe, write_required
from migrator.auth.service import require_org
from migrator.db import get_session
from migrator.engine import unlink
from migrator.org.models import Organisation
from migrator.people.models import Employee

_REFUSED = {"invalid": 400, "forbidden": 403, "conflict": 409}


@bp.post("/employees/<int:employee_id>/unlink")
@write_required
def unlink_employee_api(employee_id: int):
    """Unlink the employee's Max account; the runner removes it from the chats (202)."""
    session = get_session()
    emp = session.get(Employee, employee_id)
    if emp is None:
        return api_error(404, "not_found", "Unknown employee.")
    require_org(session.get(Organisation, emp.org_id))  # 404 outside the caller's scope
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "bad_request", "A JSON object is expected.")
    reason, rebind = body.get("reason"), body.get("rebind", False)
    errors = {}
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = "required, a non-empty string"
    elif len(reason) > 2000:
        errors["reason"] = "at most 2000 characters"
    if not isinstance(rebind, bool):
        errors["rebind"] = "a boolean"
    if errors:
        return api_error(400, "invalid", "The request is not valid.", errors)
    try:
        row = unlink.request_unlink(emp, current_user, reason, rebind=rebind)
    except unlink.UnlinkRefused as exc:
        session.rollback()
        return api_error(_REFUSED[exc.code], exc.code, exc.message, exc.details)
    session.commit()
    return jsonify(unlink.unlink_json(row)), 202


describe("/employees/{id}/unlink", "post", {
    "summary": "Unlink an employee's Max account",
    "description": "Clears the employee's Max account; their groups wait for a Max account "
                   "again and their unused invitation links stop working. The account is "
                   "removed from every chat the tool added it to (never a chat's owner or "
                   "admins, nor a chat where another employee record linked to the same "
                   "account still belongs) by the next run. With `rebind` a new invitation "
                   "is sent to the employee's own e-mail. Open «possibly someone else's "
                   "link» and name-mismatch reviews are closed. Audited as "
                   "`identity.unlinked` or `identity.rebind` with the reason.",
    "parameters": [{"name": "id", "in": "path", "required": True,
                    "schema": {"type": "integer"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 2000},
                       "rebind": {"type": "boolean", "default": False}}}}}},
    "responses": {
        "202": {"description": "Unlinked; the removal from chats is carried out by the "
                               "next run",
                "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Unlink"}}}},
        "400": {"description": "No reason given"},
        "403": {"description": "Role may not write"},
        "404": {"description": "Unknown employee or outside the scope"},
        "409": {"description": "The employee has no linked Max account"}},
}, schemas={"Unlink": {
    "type": "object",
    "required": ["id", "employee_id", "action", "status", "reason", "max_user_id",
                 "requested_by", "requested_at", "removed", "absent", "kept"],
    "properties": {
        "id": {"type": "integer"}, "employee_id": {"type": "integer"},
        "action": {"type": "string", "enum": ["unlink", "rebind"]},
        "status": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
        "reason": {"type": "string"}, "max_user_id": {"type": "integer"},
        "requested_by": {"type": "string"},
        "requested_at": {"type": "string", "format": "date-time"},
        "removed": {"type": "integer"}, "absent": {"type": "integer"},
        "kept": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True}}}})

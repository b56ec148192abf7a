"""API: ``POST /waves``, ``GET /groups/{key}``, ``POST /groups/{key}/steps/{kind}/confirm``,
``POST /groups/{key}/rollback``."""

from __future__ import annotations

from datetime import datetime

from flask import jsonify, request
from flask_login import current_user

from migrator.api import api_error, bp, describe, token_required, write_required
from migrator.db import get_session
from migrator.engine import control, rollback
from migrator.engine.models import STEP_KINDS
from migrator.groups.attention import attention_text, code_of
from migrator.groups.service import coverage, get_group_by_key
from migrator.max.models import MaxChat
from migrator.waves import service
from migrator.waves.settings import get_setting


def _parse_dt(value, name: str, errors: dict) -> datetime | None:
    if not isinstance(value, str) or not value:
        errors[name] = "required, ISO 8601 with a UTC offset"
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors[name] = "not an ISO 8601 date-time"
        return None
    if parsed.tzinfo is None:
        errors[name] = "the UTC offset is missing (e.g. 2026-07-01T09:00:00+05:00)"
        return None
    return parsed


@bp.post("/waves")
@write_required
def create_wave_api():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "bad_request", "A JSON object is expected.")
    errors: dict[str, str] = {}
    dates = {k: _parse_dt(body.get(k), k, errors) for k in service.DATE_FIELDS}
    keys = body.get("group_keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        errors["group_keys"] = "a non-empty list of group keys"
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "required"
    if errors:
        return api_error(400, "invalid", "The wave is not valid.", errors)
    try:
        wave = service.create_wave(name, keys, **dates, user=current_user)
    except service.WriteForbidden:
        return api_error(403, "forbidden", "This role may not plan waves.")
    except service.GroupsNotFound as exc:
        return api_error(404, "not_found", "Unknown groups.", {"group_keys": exc.keys})
    except service.WaveError as exc:
        return api_error(400, "invalid", "The wave is not valid.", exc.details)
    get_session().commit()
    return jsonify(service.wave_to_json(wave)), 201


def _step_json(step) -> dict:
    return {"kind": step.kind, "status": step.status,
            "due_at": step.due_at.isoformat(),
            "next_attempt_at": step.next_attempt_at.isoformat(),
            "attempts": step.attempts, "last_error": step.last_error,
            "confirmed_at": step.confirmed_at.isoformat() if step.confirmed_at else None,
            "note": step.note}


def group_json(group) -> dict:
    session = get_session()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    in_chat, total = coverage(group)
    return {
        "key": group.key, "name": group.name, "platform": group.platform,
        "wave_id": group.wave_id, "needs_attention": group.needs_attention,
        "attention_reason": attention_text(group.attention_reason) or None,
        "attention_code": code_of(group.attention_reason),
        "mapping": None if chat is None else {
            "chat_id": chat.chat_id, "title": chat.title, "status": chat.status,
            "preflight_ok": chat.preflight_ok, "missing_permissions": chat.missing_permissions,
            "linked_at": group.linked_at.isoformat() if group.linked_at else None},
        "steps": [_step_json(s) for s in control.group_steps(group)],
        "coverage": {"in_chat": in_chat, "members": total,
                     "percent": round(100 * in_chat / total, 1) if total else 0.0,
                     "threshold": get_setting("coverage_threshold")},
        "rollback": rollback.rollback_json(rollback.latest(group)),
    }


@bp.get("/groups/<key>")
@token_required
def group_api(key: str):
    return jsonify(group_json(get_group_by_key(key)))


@bp.post("/groups/<key>/steps/<kind>/confirm")
@write_required
def confirm_step_api(key: str, kind: str):
    group = get_group_by_key(key)
    if kind not in STEP_KINDS:
        return api_error(404, "not_found", "Unknown step kind.")
    body = request.get_json(silent=True) or {}
    note = body.get("note", "") if isinstance(body, dict) else ""
    if not isinstance(note, str):
        return api_error(400, "invalid", "note must be a string.")
    step = control.get_step(group, kind)
    if step is None:
        return api_error(404, "not_found", "The group has no such step.")
    try:
        control.confirm(step, current_user, note)
    except control.ControlError as exc:
        get_session().rollback()
        return api_error(409, "conflict", str(exc), {"status": step.status})
    get_session().commit()
    return jsonify(_step_json(step))


_REFUSED = {"invalid": 400, "forbidden": 403, "conflict": 409}


@bp.post("/groups/<key>/rollback")
@write_required
def rollback_group_api(key: str):
    """Undo the group's move; the runner carries it out (202 with the request)."""
    group = get_group_by_key(key)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "bad_request", "A JSON object is expected.")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return api_error(400, "invalid", "A reason is required.",
                         {"reason": "required, a non-empty string"})
    try:
        rb = rollback.request_rollback(group, current_user, reason)
    except rollback.RollbackRefused as exc:
        get_session().rollback()
        return api_error(_REFUSED[exc.code], exc.code, exc.message, exc.details)
    get_session().commit()
    return jsonify(rollback.rollback_json(rb)), 202


_DT = {"type": "string", "format": "date-time"}
describe("/waves", "post", {
    "summary": "Plan a wave of groups",
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["name", "group_keys", *service.DATE_FIELDS],
        "properties": {"name": {"type": "string"},
                       "group_keys": {"type": "array", "items": {"type": "string"}},
                       **{k: _DT for k in service.DATE_FIELDS}}}}}},
    "responses": {"201": {"description": "The wave"},
                  "400": {"description": "Invalid input, with details per field"},
                  "403": {"description": "Role may not write"},
                  "404": {"description": "Unknown group or outside the scope"}},
})
describe("/groups/{key}", "get", {
    "summary": "A group: mapping, steps, coverage",
    "parameters": [{"name": "key", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
    "responses": {"200": {"description": "The group"},
                  "404": {"description": "Unknown or outside the scope"}},
})
describe("/groups/{key}/steps/{kind}/confirm", "post", {
    "summary": "Confirm a manual step (announce, cutover)",
    "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                   {"name": "kind", "in": "path", "required": True,
                    "schema": {"type": "string", "enum": list(STEP_KINDS)}}],
    "requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "properties": {"note": {"type": "string"}}}}}},
    "responses": {"200": {"description": "The confirmed step"},
                  "404": {"description": "Unknown group or step"},
                  "409": {"description": "The step is not waiting for a confirmation"}},
})
describe("/groups/{key}/rollback", "post", {
    "summary": "Undo a group's move",
    "description": "Removes from the Max chat exactly the members the tool brought in (never "
                   "the owner, people who were there before, joined on their own or were "
                   "added by others), unpins the announcement the tool pinned, unlinks the "
                   "group and cancels its remaining steps (skipped, «откат»). The request is "
                   "recorded at once and carried out by the next run. After the cutover only "
                   "an administrator may do it.",
    "parameters": [{"name": "key", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}}}}}},
    "responses": {
        "202": {"description": "The rollback, recorded; the runner carries it out",
                "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Rollback"}}}},
        "400": {"description": "No reason given"},
        "403": {"description": "Role may not write, or the cutover is done and the caller "
                               "is not an administrator"},
        "404": {"description": "Unknown group or outside the scope"},
        "409": {"description": "Nothing to undo, or a rollback is already under way"}},
}, schemas={"Rollback": {
    "type": "object",
    "required": ["id", "status", "reason", "requested_by", "requested_at", "removed",
                 "absent", "kept", "unpinned", "steps_skipped"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
        "reason": {"type": "string"}, "requested_by": {"type": "string"},
        "requested_at": {"type": "string", "format": "date-time"},
        "after_cutover": {"type": "boolean"},
        "chat_id": {"type": "integer", "nullable": True},
        "removed": {"type": "integer"}, "absent": {"type": "integer"},
        "kept": {"type": "integer"}, "unpinned": {"type": "boolean"},
        "steps_skipped": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True}}}})

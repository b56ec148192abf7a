"""API: ``GET /chats`` (the chats the bot is in, scoped) and ``POST /groups/{key}/link``."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user
from sqlmodel import select

from migrator.api import api_error, bp, describe, token_required, write_required
from migrator.auth.service import scoped
from migrator.core.params import INT64_MAX, parse_int
from migrator.db import get_session
from migrator.groups.models import SourceGroup
from migrator.max import service
from migrator.max.models import CHAT_STATUSES, MaxChat

MAX_LIMIT = 1000
MAX_OFFSET = 10**9  # an OFFSET far beyond any list that every database takes


@bp.get("/chats")
@token_required
def list_chats():
    status = request.args.get("status")
    if status is not None and status not in CHAT_STATUSES:
        return api_error(400, "bad_request", "status must be discovered, linked or removed.")
    limit = parse_int(request.args.get("limit", 500), -INT64_MAX, INT64_MAX)
    offset = parse_int(request.args.get("offset", 0), 0, MAX_OFFSET)
    if limit is None or offset is None:
        return api_error(400, "bad_request", f"limit must be an integer and offset an integer "
                                             f"from 0 to {MAX_OFFSET}.")
    limit = min(MAX_LIMIT, max(1, limit))
    query = service.visible_chats_query(current_user)
    if status:
        query = query.where(MaxChat.status == status)
    chats = list(get_session().exec(
        query.order_by(MaxChat.id).limit(limit + 1).offset(offset)).all())
    more = len(chats) > limit
    chats = chats[:limit]
    keys = service.group_keys_by_chat([c.id for c in chats], current_user)
    return jsonify({"chats": [service.chat_json(c, keys.get(c.id, [])) for c in chats],
                    "next_offset": offset + limit if more else None})


@bp.post("/groups/<key>/link")
@write_required
def link_group(key: str):
    body = request.get_json(silent=True)
    chat_id = body.get("chat_id") if isinstance(body, dict) else None
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        return api_error(400, "bad_request", 'A JSON object {"chat_id": <Max chat id>} '
                                             "is expected.")
    session = get_session()
    group = session.exec(scoped(select(SourceGroup).where(SourceGroup.key == key),
                                SourceGroup.org_id)).first()
    if group is None:
        return api_error(404, "not_found", "Unknown group.")
    chat = service.chat_by_max_id(chat_id)
    if chat is None or not service.can_see_chat(chat, current_user):
        return api_error(404, "not_found", "Unknown Max chat.")
    try:
        service.link_group(group, chat, current_user)
    except service.LinkConflict as exc:
        session.rollback()
        return api_error(409, exc.code, exc.message)
    session.commit()
    return jsonify({"group_key": group.key,
                    "linked_at": group.linked_at.isoformat() if group.linked_at else None,
                    "chat": service.chat_json(chat, service.group_keys_by_chat(
                        [chat.id], current_user).get(chat.id, []))})


_CHAT_SCHEMA = {
    "type": "object",
    "properties": {
        "chat_id": {"type": "integer", "format": "int64", "description": "Max chat id"},
        "title": {"type": "string"},
        "status": {"type": "string", "enum": list(CHAT_STATUSES)},
        "bot_is_admin": {"type": "boolean"},
        "missing_permissions": {"type": "array", "items": {"type": "string"}},
        "checked_at": {"type": "string", "format": "date-time", "nullable": True},
        "added_at": {"type": "string", "format": "date-time", "nullable": True},
        "group_keys": {"type": "array", "items": {"type": "string"}},
    },
}
_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

describe("/chats", "get", {
    "summary": "Max chats the bot was added to (within your organisations)",
    "parameters": [
        {"name": "status", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(CHAT_STATUSES)}},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 500}},
        {"name": "offset", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "default": 0}},
    ],
    "responses": {
        "200": {"description": "The chats", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "chats": {"type": "array", "items": {"$ref": "#/components/schemas/MaxChat"}},
                "next_offset": {"type": "integer", "nullable": True}}}}}},
        "400": {"description": "Bad filter", **_ERR},
        "401": {"description": "No valid token", **_ERR},
    },
}, {"MaxChat": _CHAT_SCHEMA})

describe("/groups/{key}/link", "post", {
    "summary": "Link a source group to a Max chat",
    "parameters": [{"name": "key", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["chat_id"],
        "properties": {"chat_id": {"type": "integer", "format": "int64"}}}}}},
    "responses": {
        "200": {"description": "The mapping", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "group_key": {"type": "string"},
                "linked_at": {"type": "string", "format": "date-time"},
                "chat": {"$ref": "#/components/schemas/MaxChat"}}}}}},
        "400": {"description": "Malformed body", **_ERR},
        "401": {"description": "No valid token", **_ERR},
        "403": {"description": "Read-only role", **_ERR},
        "404": {"description": "Unknown group or chat (or outside your organisations)", **_ERR},
        "409": {"description": "Conflicting mapping: the group is linked to another chat, "
                               "the chat serves another organisation, or the bot was "
                               "removed", **_ERR},
    },
})

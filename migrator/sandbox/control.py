"""The sandbox's control surface under ``/_sandbox/`` (JSON, no auth): see the package docs."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from migrator.sandbox.state import BOT_USER_ID, SandboxError, SandboxState

bp = Blueprint("max_sandbox_control", __name__, url_prefix="/_sandbox")


def _state() -> SandboxState:
    return current_app.extensions["max_sandbox"]


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SandboxError(400, "proto.payload", "request body must be a JSON object")
    return data


def _since() -> float | None:
    raw = request.args.get("since")
    return float(raw) if raw else None


def _chat_json(st: SandboxState, chat_id: int) -> dict[str, Any]:
    chat = st.chat(chat_id)
    data = st.chat_to_api(chat)
    data.update(
        {
            "bot_status": chat.bot_status,
            "members": [
                st.member_to_api(m) for m in sorted(chat.members.values(), key=lambda m: m.user_id)
            ],
            "messages": list(chat.messages),
            "pinned_message_id": chat.pinned_mid,
        }
    )
    return data


def _user_json(st: SandboxState, user_id: int) -> dict[str, Any]:
    user = st.user(user_id)
    data = user.to_api()
    data.update({"allow_add": user.allow_add, "bot_started": user.bot_started})
    return data


@bp.get("/")
def index() -> Response:
    st = _state()
    with st.lock:
        chats = "".join(
            f"<li><a href='/_sandbox/chats/{c.chat_id}'>{c.chat_id}</a> "
            f"{html.escape(c.title)} - {len(c.members)} members, bot: {c.bot_status}</li>"
            for c in st.chats.values()
        )
        users = "".join(
            f"<li><a href='/_sandbox/users/{u.user_id}'>{u.user_id}</a> "
            f"{html.escape(u.first_name)} {html.escape(u.last_name or '')}"
            f"{' (started)' if u.bot_started else ''}</li>"
            for u in st.users.values()
        )
        page = (
            "<!doctype html><meta charset='utf-8'><title>Max sandbox</title>"
            f"<h1>Max Bot API sandbox - @{html.escape(st.bot_username)}</h1>"
            f"<h2>Chats</h2><ul>{chats or '<li>none</li>'}</ul>"
            f"<h2>Users</h2><ul>{users or '<li>none</li>'}</ul>"
            "<p><a href='/_sandbox/requests'>request log</a> · "
            "<a href='/_sandbox/deliveries'>webhook deliveries</a> · "
            "<a href='/_sandbox/updates'>updates</a> · <a href='/_sandbox/faults'>faults</a></p>"
        )
    return Response(page, mimetype="text/html")


@bp.post("/reset")
def reset() -> Response:
    st = _state()
    body = _body()
    if st.delivery is not None:
        st.delivery.clear()
    st.reset(seed=body.get("seed", 0))
    current_app.extensions["max_sandbox_hits"].clear()
    return jsonify({"success": True})


# -- users -----------------------------------------------------------------------------


@bp.get("/users")
def list_users() -> Response:
    st = _state()
    with st.lock:
        return jsonify({"users": [_user_json(st, uid) for uid in st.users]})


@bp.post("/users")
def create_user() -> Response:
    st = _state()
    body = _body()
    if not body.get("first_name"):
        raise SandboxError(400, "proto.payload", "first_name is required")
    user = st.create_user(
        first_name=body["first_name"],
        last_name=body.get("last_name"),
        username=body.get("username"),
        user_id=body.get("user_id"),
        allow_add=bool(body.get("allow_add", True)),
    )
    with st.lock:
        return jsonify(_user_json(st, user.user_id)), 201


@bp.get("/users/<int:user_id>")
def get_user(user_id: int) -> Response:
    st = _state()
    with st.lock:
        return jsonify(_user_json(st, user_id))


@bp.patch("/users/<int:user_id>")
def update_user(user_id: int) -> Response:
    st = _state()
    body = _body()
    with st.lock:
        user = st.user(user_id)
        if "allow_add" in body:
            user.allow_add = bool(body["allow_add"])
        for name in ("first_name", "last_name", "username"):
            if name in body:
                setattr(user, name, body[name])
        return jsonify(_user_json(st, user_id))


@bp.get("/users/<int:user_id>/messages")
def user_messages(user_id: int) -> Response:
    st = _state()
    with st.lock:
        st.user(user_id)
        return jsonify({"messages": list(st.dialogs.get(user_id, []))})


@bp.post("/users/<int:user_id>/start")
def user_start(user_id: int) -> Response:
    body = _body()
    return jsonify(_state().user_starts(user_id, body.get("payload")))


@bp.post("/users/<int:user_id>/stop")
def user_stop(user_id: int) -> Response:
    return jsonify(_state().user_stops(user_id))


@bp.post("/users/<int:user_id>/write")
def user_writes_to_bot(user_id: int) -> Response:
    """``{"text"}``: the user writes to the bot in their dialog -> message_created."""
    body = _body()
    if not isinstance(body.get("text"), str) or not body["text"]:
        raise SandboxError(400, "proto.payload", "text is required")
    return jsonify(_state().user_writes_to_bot(user_id, body["text"]))


@bp.post("/deeplink")
def deeplink() -> Response:
    """``{"user_id", "url": "https://max.ru/<bot>?start=<payload>"}``: the user presses Start."""
    st = _state()
    body = _body()
    url = body.get("url") or ""
    parts = urlsplit(url)
    bot = parts.path.strip("/")
    if parts.scheme != "https" or parts.hostname != "max.ru" or bot != st.bot_username:
        raise SandboxError(
            400, "proto.payload", f"expected https://max.ru/{st.bot_username}?start=<payload>"
        )
    payload = parse_qs(parts.query).get("start", [None])[0]
    if body.get("user_id") is None:
        raise SandboxError(400, "proto.payload", "user_id is required")
    return jsonify(st.user_starts(int(body["user_id"]), payload))


# -- chats -----------------------------------------------------------------------------


@bp.get("/chats")
def list_chats() -> Response:
    st = _state()
    with st.lock:
        return jsonify({"chats": [_chat_json(st, cid) for cid in st.chats]})


@bp.post("/chats")
def create_chat() -> Response:
    st = _state()
    body = _body()
    if not body.get("title") or body.get("owner_id") is None:
        raise SandboxError(400, "proto.payload", "title and owner_id are required")
    chat = st.create_chat(
        title=body["title"],
        owner_id=int(body["owner_id"]),
        chat_id=body.get("chat_id"),
        member_ids=body.get("member_ids"),
        link=body.get("link"),
    )
    with st.lock:
        return jsonify(_chat_json(st, chat.chat_id)), 201


@bp.get("/chats/<int(signed=True):chat_id>")
def get_chat(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        return jsonify(_chat_json(st, chat_id))


@bp.patch("/chats/<int(signed=True):chat_id>")
def patch_chat(chat_id: int) -> Response:
    """The owner sets or removes the chat's join link silently: ``{"link": "https://..."}``
    or ``{"link": null}`` (no update, as on Max)."""
    body = _body()
    if "link" not in body:
        raise SandboxError(400, "proto.payload", "link is required")
    st = _state()
    st.set_link(chat_id, body["link"])
    with st.lock:
        return jsonify(_chat_json(st, chat_id))


@bp.post("/chats/<int(signed=True):chat_id>/bot")
def add_bot(chat_id: int) -> Response:
    """The bot is added as admin: ``{"permissions": [...], "by_user_id": .., "is_admin": true}``."""
    body = _body()
    update = _state().add_bot(
        chat_id,
        by_user_id=body.get("by_user_id"),
        permissions=body.get("permissions"),
        is_admin=bool(body.get("is_admin", True)),
    )
    return jsonify(update)


@bp.patch("/chats/<int(signed=True):chat_id>/bot")
def set_bot_rights(chat_id: int) -> Response:
    """Promote or demote the bot silently: ``{"permissions": [...], "is_admin"?: true}``."""
    body = _body()
    member = _state().set_bot_rights(
        chat_id, permissions=body.get("permissions"), is_admin=bool(body.get("is_admin", True))
    )
    return jsonify(member)


@bp.delete("/chats/<int(signed=True):chat_id>/bot")
def remove_bot(chat_id: int) -> Response:
    body = _body()
    return jsonify(_state().remove_bot(chat_id, by_user_id=body.get("by_user_id")))


@bp.post("/chats/<int(signed=True):chat_id>/title")
def change_title(chat_id: int) -> Response:
    body = _body()
    if not isinstance(body.get("title"), str):
        raise SandboxError(400, "proto.payload", "title is required")
    return jsonify(_state().change_title(chat_id, body["title"], by_user_id=body.get("by_user_id")))


@bp.post("/chats/<int(signed=True):chat_id>/members")
def user_joins(chat_id: int) -> Response:
    body = _body()
    if body.get("user_id") is None:
        raise SandboxError(400, "proto.payload", "user_id is required")
    update = _state().user_joins(chat_id, int(body["user_id"]), inviter_id=body.get("inviter_id"))
    return jsonify({"update": update})


@bp.delete("/chats/<int(signed=True):chat_id>/members/<int:user_id>")
def user_leaves(chat_id: int, user_id: int) -> Response:
    body = _body()
    update = _state().user_leaves(chat_id, user_id, admin_id=body.get("admin_id"))
    return jsonify({"update": update})


@bp.post("/chats/<int(signed=True):chat_id>/messages")
def user_writes(chat_id: int) -> Response:
    body = _body()
    if body.get("user_id") is None or not isinstance(body.get("text"), str):
        raise SandboxError(400, "proto.payload", "user_id and text are required")
    return jsonify(_state().user_writes(chat_id, int(body["user_id"]), body["text"]))


# -- logs, updates, faults -------------------------------------------------------------


@bp.get("/requests")
def request_log() -> Response:
    st = _state()
    since = _since()
    with st.lock:
        entries = [e for e in st.request_log if since is None or e["at"] >= since]
    return jsonify({"requests": entries})


@bp.delete("/requests")
def clear_request_log() -> Response:
    st = _state()
    with st.lock:
        st.request_log.clear()
    return jsonify({"success": True})


@bp.get("/deliveries")
def delivery_log() -> Response:
    st = _state()
    since = _since()
    with st.lock:
        entries = [e for e in st.delivery_log if since is None or e["at"] >= since]
    pending = st.delivery.pending() if st.delivery is not None else 0
    return jsonify({"deliveries": entries, "pending": pending})


@bp.get("/updates")
def updates() -> Response:
    st = _state()
    with st.lock:
        return jsonify({"updates": list(st.updates)})


@bp.get("/faults")
def get_faults() -> Response:
    return jsonify(_state().faults_json())


@bp.post("/faults")
def set_faults() -> Response:
    return jsonify(_state().set_faults(_body()))


_WEBHOOK_SETTINGS = (
    "webhook_retry_base", "webhook_retry_factor", "webhook_retry_cap",
    "webhook_give_up_after", "webhook_unsubscribe_after",
)


def _webhook_json(st: SandboxState) -> dict[str, Any]:
    out: dict[str, Any] = {k.removeprefix("webhook_"): getattr(st, k) for k in _WEBHOOK_SETTINGS}
    out["dev_webhooks"] = st.dev_webhooks
    out["subscriptions"] = [
        {"url": s.url, "failing_since": s.failing_since} for s in st.subscriptions.values()
    ]
    return out


@bp.get("/webhooks")
def get_webhook_settings() -> Response:
    st = _state()
    with st.lock:
        return jsonify(_webhook_json(st))


@bp.post("/webhooks")
def set_webhook_settings() -> Response:
    """Compress webhook time: ``{"retry_base", "retry_factor", "retry_cap", "give_up_after",
    "unsubscribe_after"}`` in seconds (any subset)."""
    st = _state()
    body = _body()
    with st.lock:
        for key in _WEBHOOK_SETTINGS:
            short = key.removeprefix("webhook_")
            if short in body:
                value = body[short]
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise SandboxError(400, "proto.payload", f"{short} must be a number >= 0")
                setattr(st, key, float(value))
        return jsonify(_webhook_json(st))


@bp.get("/bot")
def bot() -> Response:
    st = _state()
    return jsonify({"user_id": BOT_USER_ID, "username": st.bot_username})

"""The Max Bot API surface of the sandbox: the methods the Migrator client calls.

Answers use the status codes and JSON shapes of the official schema (0.0.32); errors are
``{"code": "...", "message": "..."}``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, request

from migrator.sandbox.state import (
    BOT_USER_ID,
    DIALOG_ID_BASE,
    SandboxError,
    SandboxState,
    Subscription,
)

bp = Blueprint("max_api", __name__)

MAX_TEXT = 4000
SECRET_RE = re.compile(r"^[a-zA-Z0-9_-]{5,256}$")
UPDATE_TYPES = {
    "bot_added",
    "bot_removed",
    "bot_started",
    "bot_stopped",
    "chat_title_changed",
    "dialog_cleared",
    "dialog_muted",
    "dialog_unmuted",
    "dialog_removed",
    "message_callback",
    "message_created",
    "message_edited",
    "message_removed",
    "user_added",
    "user_removed",
}


# Operations answering SimpleQueryResult / ModifyMembersResult, which carry ``success``:
# the ``soft_fail`` fault answers them 200 with ``success: false`` and does nothing.
SOFT_FAILING = {
    "/chats/<int(signed=True):chat_id>/members": ("POST", "DELETE"),
    "/chats/<int(signed=True):chat_id>/pin": ("PUT", "DELETE"),
    "/subscriptions": ("POST", "DELETE"),
}


def _template() -> str:
    """The schema's path template of this request (``/chats/{chatId}/pin``)."""
    rule = request.url_rule.rule if request.url_rule else request.path
    return rule.replace("<int(signed=True):chat_id>", "{chatId}")


def _state() -> SandboxState:
    return current_app.extensions["max_sandbox"]


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    resp = jsonify({"code": code, "message": message})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _ok(message: str | None = None) -> Response:
    body: dict[str, Any] = {"success": True}
    if message:
        body["message"] = message
    return jsonify(body)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SandboxError(400, "proto.payload", "request body must be a JSON object")
    return data


def _int_arg(name: str, *, required: bool = False) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "" or raw == "null":
        if required:
            raise SandboxError(400, "proto.payload", f"query parameter {name!r} is required")
        return None
    try:
        return int(raw)
    except ValueError:
        raise SandboxError(400, "proto.payload", f"{name!r} must be an integer") from None


def _bool_arg(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise SandboxError(400, "proto.payload", f"{name!r} must be true or false")


def _csv_ints(name: str) -> list[int] | None:
    raw = request.args.getlist(name)
    if not raw:
        return None
    try:
        return [int(p) for item in raw for p in item.split(",") if p.strip()]
    except ValueError:
        raise SandboxError(400, "proto.payload", f"{name!r} must be integers") from None


# -- gatekeeping: auth, rate limit, faults, request log -------------------------------


@bp.before_app_request
def _gate() -> Response | None:
    if request.path.startswith("/_sandbox"):
        return None
    st = _state()
    cfg = current_app.config
    g.max_arrived_at = time.time()
    token = request.headers.get("Authorization") or request.args.get("access_token")
    if token != cfg["MAX_SANDBOX_TOKEN"]:
        g.max_fault = "auth"
        return error_response(401, "verify.token", "Invalid access_token")
    rps = cfg["MAX_SANDBOX_RPS"]
    if rps:
        hits: deque[float] = current_app.extensions["max_sandbox_hits"]
        with st.lock:
            now = g.max_arrived_at
            while hits and hits[0] <= now - 1.0:
                hits.popleft()
            if len(hits) >= rps:
                g.max_fault = "rate"
                return error_response(
                    429,
                    "too.many.requests",
                    f"more than {rps} requests per second",
                    {"Retry-After": "1"},
                )
            hits.append(now)
    if st.fire("not_found", request.method, request.path):
        g.max_fault = "not_found"
        return error_response(404, "not.found", "injected: no such method")
    if st.fire("fail_503"):
        g.max_fault = "fail_503"
        return error_response(503, "service.unavailable", "injected: service unavailable")
    if st.fire("fail_429"):
        g.max_fault = "fail_429"
        headers = {}
        if st.retry_after is not None:
            headers["Retry-After"] = f"{st.retry_after:g}"
        return error_response(429, "too.many.requests", "injected: too many requests", headers)
    rule = request.url_rule.rule if request.url_rule else ""
    if request.method in SOFT_FAILING.get(rule, ()) and st.fire(
        "soft_fail", request.method, _template()
    ):
        g.max_fault = "soft_fail"
        return jsonify({"success": False, "message": "injected: the operation did not succeed"})
    if st.fire("slow"):
        g.max_fault = "slow"
        time.sleep(st.slow_ms / 1000.0)
    return None


def _drop_connection() -> None:
    """Close the client's connection before the answer is written: the request was carried
    out, the caller never learns it (a lost answer; the client sees a disconnect)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@bp.after_app_request
def _log(response: Response) -> Response:
    if not request.path.startswith("/_sandbox") and "max_arrived_at" in g:
        st = _state()
        if (200 <= response.status_code < 300 and g.get("max_fault") in (None, "slow")
                and st.fire("drop_answer", request.method, _template())):
            g.max_fault = "drop_answer"
            _drop_connection()
        with st.lock:
            st.request_log.append(
                {
                    "at": g.max_arrived_at,
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string.decode("latin-1"),
                    "status": response.status_code,
                    "fault": g.get("max_fault"),
                }
            )
            if "max_add_ids" in g:  # the ids an add call carried, to count adds per person
                st.request_log[-1]["user_ids"] = g.max_add_ids
    return response


@bp.app_errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


# -- bot -------------------------------------------------------------------------------


@bp.get("/me")
def get_me() -> Response:
    st = _state()
    data = st.bot.to_api()
    data.update({"description": "Migrator sandbox bot", "commands": None})
    return jsonify(data)


# -- chats -----------------------------------------------------------------------------


@bp.get("/chats/<int(signed=True):chat_id>")
def get_chat(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        chat = st.chat(chat_id)
        if chat.bot_status is None:
            raise SandboxError(403, "chat.denied", f"bot is not a member of chat {chat_id}")
        return jsonify(st.chat_to_api(chat))


@bp.patch("/chats/<int(signed=True):chat_id>")
def edit_chat(chat_id: int) -> Response:
    st = _state()
    body = _body()
    with st.lock:
        chat = st.bot_chat(chat_id, admin=True)
        if "title" in body and body["title"] is not None:
            title = body["title"]
            if not isinstance(title, str) or not 1 <= len(title) <= 200:
                raise SandboxError(400, "proto.payload", "title must have 1..200 characters")
            if title != chat.title:
                st.change_title(chat_id, title, by_user_id=BOT_USER_ID)
        if body.get("pin") is not None:
            if st.find_message(chat, body["pin"]) is None:
                raise SandboxError(404, "not.found", f"message {body['pin']} not found")
            chat.pinned_mid = body["pin"]
        return jsonify(st.chat_to_api(chat))


@bp.get("/chats/<int(signed=True):chat_id>/members")
def get_members(chat_id: int) -> Response:
    st = _state()
    user_ids = _csv_ints("user_ids")
    if user_ids is not None and len(set(user_ids)) != len(user_ids):
        raise SandboxError(400, "proto.payload", "user_ids must be unique")
    marker = _int_arg("marker")
    count = _int_arg("count")
    count = 20 if count is None else count
    if not 1 <= count <= 100:
        raise SandboxError(400, "proto.payload", "count must be 1..100")
    with st.lock:
        chat = st.bot_chat(chat_id)
        members = sorted(chat.members.values(), key=lambda m: m.user_id)
        if user_ids is not None:
            wanted = set(user_ids)
            page = [m for m in members if m.user_id in wanted]
            next_marker = None
        else:
            after = marker if marker is not None else -1
            rest = [m for m in members if m.user_id > after]
            page = rest[:count]
            next_marker = page[-1].user_id if len(rest) > count else None
        return jsonify({"members": [st.member_to_api(m) for m in page], "marker": next_marker})


@bp.post("/chats/<int(signed=True):chat_id>/members")
def add_members(chat_id: int) -> Response:
    st = _state()
    body = _body()
    ids = body.get("user_ids")
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(u, int) and not isinstance(u, bool) for u in ids)
    ):
        raise SandboxError(400, "proto.payload", "user_ids must be a non-empty list of integers")
    if len(ids) > 100:
        raise SandboxError(400, "proto.payload", "at most 100 user_ids per request")
    if len(set(ids)) != len(ids):
        raise SandboxError(400, "proto.payload", "user_ids must be unique")
    g.max_add_ids = list(ids)
    with st.lock:
        chat = st.bot_chat(chat_id, permission="add_remove_members")
        not_found: list[int] = []
        privacy: list[int] = []
        for uid in ids:
            user = st.users.get(uid)
            if user is None:
                not_found.append(uid)
            elif uid in chat.members:
                continue  # already a member: fine, nothing to do
            elif not user.allow_add:
                privacy.append(uid)
            else:
                st.user_joins(chat_id, uid, inviter_id=BOT_USER_ID)
        result: dict[str, Any] = {"success": True}
        failed = privacy + not_found
        if failed:
            result["failed_user_ids"] = failed
            details = []
            if privacy:
                details.append({"error_code": "add.participant.privacy", "user_ids": privacy})
            if not_found:
                details.append({"error_code": "add.participant.not.found", "user_ids": not_found})
            result["failed_user_details"] = details
        return jsonify(result)


@bp.delete("/chats/<int(signed=True):chat_id>/members")
def remove_member(chat_id: int) -> Response:
    st = _state()
    user_id = _int_arg("user_id", required=True)
    _bool_arg("block", False)  # only for chats with links: accepted and ignored
    with st.lock:
        chat = st.bot_chat(chat_id, permission="add_remove_members")
        if user_id not in chat.members:
            return _ok("user is not a member")
        if chat.members[user_id].is_owner or user_id == BOT_USER_ID:
            raise SandboxError(403, "chat.denied", "cannot remove the owner or the bot itself")
        st.user_leaves(chat_id, user_id, admin_id=BOT_USER_ID)
        return _ok()


@bp.get("/chats/<int(signed=True):chat_id>/members/me")
def get_membership(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        chat = st.bot_chat(chat_id)
        return jsonify(st.member_to_api(chat.members[BOT_USER_ID]))


@bp.get("/chats/<int(signed=True):chat_id>/members/admins")
def get_admins(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        chat = st.bot_chat(chat_id)
        admins = [m for m in sorted(chat.members.values(), key=lambda m: m.user_id) if m.is_admin]
        return jsonify({"members": [st.member_to_api(m) for m in admins], "marker": None})


@bp.get("/chats/<int(signed=True):chat_id>/pin")
def get_pinned(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        chat = st.bot_chat(chat_id)
        pinned = st.find_message(chat, chat.pinned_mid) if chat.pinned_mid else None
        return jsonify({"message": pinned})


@bp.put("/chats/<int(signed=True):chat_id>/pin")
def pin_message(chat_id: int) -> Response:
    st = _state()
    body = _body()
    mid = body.get("message_id")
    if not isinstance(mid, str) or not mid:
        raise SandboxError(400, "proto.payload", "message_id must be a non-empty string")
    with st.lock:
        chat = st.bot_chat(chat_id, permission="pin_message")
        st.bot_chat(chat_id, permission="read_all_messages")  # Max: no pin without it
        if st.find_message(chat, mid) is None:
            raise SandboxError(404, "not.found", f"message {mid} not found in chat {chat_id}")
        chat.pinned_mid = mid
        return _ok()


@bp.delete("/chats/<int(signed=True):chat_id>/pin")
def unpin(chat_id: int) -> Response:
    st = _state()
    with st.lock:
        chat = st.bot_chat(chat_id, permission="pin_message")
        chat.pinned_mid = None
        return _ok()


# -- messages --------------------------------------------------------------------------


@bp.post("/messages")
def send_message() -> Response:
    st = _state()
    chat_id = _int_arg("chat_id")
    user_id = _int_arg("user_id")
    _bool_arg("disable_link_preview", False)
    if (chat_id is None) == (user_id is None):
        raise SandboxError(400, "proto.payload", "give exactly one of chat_id or user_id")
    body = _body()
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise SandboxError(400, "proto.payload", "text must be a string")
    if text is not None and len(text) > MAX_TEXT:
        raise SandboxError(400, "proto.payload", f"text must be at most {MAX_TEXT} characters")
    if not text and not body.get("attachments"):
        raise SandboxError(400, "proto.payload", "a message needs text or attachments")
    fmt = body.get("format")
    if fmt not in (None, "markdown", "html"):
        raise SandboxError(400, "proto.payload", "format must be markdown or html")
    with st.lock:
        if chat_id is not None and chat_id >= DIALOG_ID_BASE:
            user_id, chat_id = chat_id - DIALOG_ID_BASE, None
        if chat_id is not None:
            chat = st.bot_chat(chat_id)  # "write" is editing/deleting; posting needs none
            message = st.new_message(st.bot, text, chat_id=chat.chat_id)
            chat.messages.append(message)
            chat.last_event_time = message["timestamp"]
        else:
            user = st.user(user_id)
            if not user.bot_started:
                raise SandboxError(
                    403, "chat.denied", f"user {user_id} has not started the bot or stopped it"
                )
            message = st.new_message(st.bot, text, user_id=user.user_id)
            st.dialogs.setdefault(user.user_id, []).append(message)
        return jsonify({"message": message})


@bp.get("/messages")
def get_messages() -> Response:
    """``MessageList``: a chat's messages (newest first) or the messages ``message_ids``."""
    st = _state()
    chat_id = _int_arg("chat_id")
    raw_ids = [p.strip() for item in request.args.getlist("message_ids")
               for p in item.split(",") if p.strip()]
    message_ids = raw_ids or None
    if chat_id is None and message_ids is None:
        raise SandboxError(400, "proto.payload", "give chat_id or message_ids")
    count = _int_arg("count")
    if count is None:
        count = 50
    if not 1 <= count <= 100:
        raise SandboxError(400, "proto.payload", "count must be between 1 and 100")
    messages = st.list_messages(chat_id=chat_id, message_ids=message_ids,
                                from_=_int_arg("from"), to=_int_arg("to"), count=count)
    return jsonify({"messages": messages})


# -- subscriptions and updates ---------------------------------------------------------


def _url_allowed(url: str, dev: bool) -> bool:
    """``https://`` on port 443, as Max requires; with the development flag, also
    ``http://`` or any port on a loopback host."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https" and port in (None, 443):
        return True
    if not dev or parts.scheme not in ("http", "https"):
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@bp.get("/subscriptions")
def get_subscriptions() -> Response:
    st = _state()
    with st.lock:
        return jsonify({"subscriptions": [s.to_api() for s in st.subscriptions.values()]})


@bp.post("/subscriptions")
def subscribe() -> Response:
    st = _state()
    body = _body()
    url = body.get("url")
    if not isinstance(url, str) or not _url_allowed(url, st.dev_webhooks):
        raise SandboxError(400, "proto.payload", "url must be https:// on port 443")
    secret = body.get("secret")
    if secret is not None and (not isinstance(secret, str) or not SECRET_RE.match(secret)):
        raise SandboxError(400, "proto.payload", "secret must match ^[a-zA-Z0-9_-]{5,256}$")
    types = body.get("update_types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise SandboxError(400, "proto.payload", "update_types must be a list of strings")
        unknown = set(types) - UPDATE_TYPES
        if unknown:
            raise SandboxError(400, "proto.payload", f"unknown update types {sorted(unknown)}")
        types = list(dict.fromkeys(types)) or None
    with st.lock:
        st.subscriptions[url] = Subscription(url=url, secret=secret, update_types=types)
    return _ok()


@bp.delete("/subscriptions")
def unsubscribe() -> Response:
    st = _state()
    url = request.args.get("url")
    if not url:
        raise SandboxError(400, "proto.payload", "query parameter 'url' is required")
    with st.lock:
        removed = st.subscriptions.pop(url, None)
    if removed is None:
        return jsonify({"success": False, "message": "no such subscription"})
    return _ok()


@bp.get("/updates")
def get_updates() -> Response:
    st = _state()
    limit = _int_arg("limit")
    limit = 100 if limit is None else limit
    timeout = _int_arg("timeout")
    timeout = 30 if timeout is None else timeout
    marker = _int_arg("marker")
    if not 1 <= limit <= 1000:
        raise SandboxError(400, "proto.payload", "limit must be 1..1000")
    if not 0 <= timeout <= 90:
        raise SandboxError(400, "proto.payload", "timeout must be 0..90")
    raw_types = request.args.getlist("types")
    types = {t for item in raw_types for t in item.split(",") if t} or None
    with st.lock:
        if st.subscriptions:
            raise SandboxError(
                405, "method.not.allowed", "long polling is off while a webhook is subscribed"
            )
    return jsonify(st.poll(marker=marker, limit=limit, timeout=timeout, types=types))

"""``POST /max/webhook``: Max delivers updates here with the shared secret header."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

from migrator.audit.service import acting_as
from migrator.db import get_session
from migrator.max import updates
from migrator.ops import instruments

log = logging.getLogger("migrator.max")

bp = Blueprint("max_webhook", __name__)

SECRET_HEADER = "X-Max-Bot-Api-Secret"  # noqa: S105 - a header name


def secret_ok(given: str | None) -> bool:
    """Constant-time comparison with ``MAX_WEBHOOK_SECRET``; no secret configured: refuse."""
    expected = current_app.config.get("MAX_WEBHOOK_SECRET") or ""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@bp.post("/max/webhook")
def webhook():
    if not secret_ok(request.headers.get(SECRET_HEADER)):
        log.warning("webhook refused: wrong or missing secret from %s", request.remote_addr)
        return jsonify({"error": "unauthorized"}), 401
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]  # 413 beyond
    update = request.get_json(silent=True)
    if not isinstance(update, dict) or not isinstance(update.get("update_type"), str):
        return jsonify({"error": "bad_request", "message": "an Update object is expected"}), 400
    instruments.webhook_update(update["update_type"])
    with acting_as(updates.MAX_ACTOR):
        result = updates.intake(update)
        get_session().commit()
        if not result.duplicate:
            updates.after_commit(result)
    return jsonify({"success": True})


def init_webhook(state) -> None:
    state.app.extensions["migrator.csrf"].exempt(bp)


bp.record_once(init_webhook)

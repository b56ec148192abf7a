"""The sandbox Flask application factory."""

from __future__ import annotations

from collections import deque

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from migrator.sandbox import api, control
from migrator.sandbox.delivery import WebhookDeliverer
from migrator.sandbox.state import SandboxState


def create_sandbox_app(
    *,
    token: str,
    bot_username: str = "migrator_bot",
    rps: int | None = 30,
    state: SandboxState | None = None,
    dev_webhooks: bool | None = None,
) -> Flask:
    """A Max Bot API sandbox answering requests made with ``token``.

    ``rps`` requests per sliding second are allowed (None or 0: unlimited); ``state`` lets
    a test share or pre-build the in-memory world (``app.extensions["max_sandbox"]``).
    ``dev_webhooks=True`` is the development flag that also accepts ``http://`` webhook URLs
    (and any port) on a loopback host; without it only ``https://`` on port 443 is accepted.
    """
    if not token:
        raise ValueError("the sandbox needs a bot token")
    app = Flask(__name__)
    app.config.update(MAX_SANDBOX_TOKEN=token, MAX_SANDBOX_RPS=rps, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    st = state or SandboxState(bot_username=bot_username)
    if dev_webhooks is not None:
        st.dev_webhooks = dev_webhooks
    if st.delivery is None:
        st.delivery = WebhookDeliverer(st)
    app.extensions["max_sandbox"] = st
    app.extensions["max_sandbox_hits"] = deque()
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        # unknown paths and methods answer with the API's error body, not HTML
        code = {404: "not.found", 405: "method.not.allowed"}.get(exc.code or 500, "error")
        resp = api.error_response(exc.code or 500, code, f"{exc.name}: {request.path}")
        if exc.code == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    return app

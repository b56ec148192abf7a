"""The JSON API under ``/api/v1``: Bearer tokens, JSON errors, an OpenAPI description.

Each feature adds its routes to :data:`bp` in its own ``api.py`` (listed in
:data:`API_MODULES`) and describes them with :func:`describe`.
"""

from __future__ import annotations

from functools import wraps
from importlib import import_module

from flask import Blueprint, jsonify
from flask_login import current_user
from werkzeug.exceptions import HTTPException

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Feature modules that add routes to ``bp`` (each appends its own line).
API_MODULES = [
    "migrator.api.meta",
    "migrator.engine.api",
    "migrator.progress.api",
    "migrator.audit.api",
    "migrator.max.api",
    "migrator.directives.api",
    "migrator.people.api",
]

_PATHS: dict[str, dict] = {}
_SCHEMAS: dict[str, dict] = {}


ERROR_RESPONSE = {"description": "An error (400, 401, 403, 404, 405, 409, 413, 500…)",
                  "content": {"application/json": {
                      "schema": {"$ref": "#/components/schemas/Error"}}}}


def describe(path: str, method: str, operation: dict, schemas: dict | None = None) -> None:
    """Add an operation to the OpenAPI document served at ``/api/v1/openapi.json``.

    Every operation may also answer a JSON error (``default``): the API's errors all have
    the ``Error`` shape.
    """
    operation = {**operation, "responses": {**operation.get("responses", {}),
                                            "default": ERROR_RESPONSE}}
    _PATHS.setdefault(path, {})[method.lower()] = operation
    _SCHEMAS.update(schemas or {})


def openapi_document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Migrator API", "version": "1.0.0",
                 "description": "Same permissions as the web UI. "
                                "Authenticate with `Authorization: Bearer <token>` "
                                "(`flask users token EMAIL`)."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                                  "properties": {"error": {"type": "string"},
                                                 "message": {"type": "string"},
                                                 "details": {}}},
                        **_SCHEMAS},
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(_PATHS.items())),
    }


def api_error(status: int, error: str, message: str, details=None):
    body = {"error": error, "message": message}
    if details is not None:
        body["details"] = details
    return jsonify(body), status


def token_required(view):
    """The caller must be authenticated by a Bearer token (the API has no session) — else
    401 JSON."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return api_error(401, "unauthorized", "A valid Bearer token is required.")
        return view(*args, **kwargs)

    return wrapped


def write_required(view):
    """Like :func:`token_required`, and the user must be an admin or a coordinator."""

    @wraps(view)
    @token_required
    def wrapped(*args, **kwargs):
        if current_user.role not in ("admin", "coordinator"):
            return api_error(403, "forbidden", "This role may not change anything.")
        return view(*args, **kwargs)

    return wrapped


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return api_error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                     exc.description or "")


def init_api(app) -> None:
    for module in API_MODULES:
        import_module(module)
    app.extensions["migrator.csrf"].exempt(bp)  # token-authenticated, no cookies needed
    app.register_blueprint(bp)

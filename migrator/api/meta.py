"""``GET /api/v1/openapi.json`` and ``GET /api/v1/me``."""

from flask import jsonify
from flask_login import current_user

from migrator.api import bp, describe, openapi_document, token_required


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


@bp.get("/me")
@token_required
def me():
    return jsonify({"email": current_user.email, "role": current_user.role})


describe("/me", "get", {
    "summary": "The authenticated user",
    "responses": {"200": {"description": "The user", "content": {"application/json": {
        "schema": {"type": "object", "properties": {"email": {"type": "string"},
                                                    "role": {"type": "string"}}}}}},
                  "401": {"description": "No or bad token"}},
})

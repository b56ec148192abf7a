"""Sign-in, roles and organisation scopes."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager

from migrator.auth import service


def init_app(app: Flask) -> None:
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = _l("Please sign in to open this page.")
    login.login_message_category = "info"
    login.session_protection = "strong"
    login.user_loader(service.load_user)
    login.request_loader(service.load_user_from_bearer)

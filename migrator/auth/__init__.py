"""Sign-in, roles and organisation scopes."""

from __future__ import annotations

from flask import Flask, flash, g, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, login_url

from migrator.auth import service


def init_app(app: Flask) -> None:
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = _l("Please sign in to open this page.")
    login.login_message_category = "info"
    login.session_protection = "strong"
    login.user_loader(service.load_user)
    login.request_loader(service.load_user_from_bearer)

    @login.unauthorized_handler
    def unauthorized():
        """The home page leads a signed-out visitor to the sign-in form quietly; any other
        page says why and comes back after signing in."""
        if request.path == "/":
            return redirect(url_for(login.login_view))
        flash(login.login_message, login.login_message_category)
        return redirect(login_url(login.login_view, next_url=request.url))

    @app.before_request
    def _user_of_this_request():
        """The user comes from this request's cookie or token, never from an app context
        that outlived an earlier request."""
        g.pop("_login_user", None)

"""Confirmation pages for destructive actions, shared by every feature.

A destructive action (undoing a group's move, unlinking a group from its chat or an
employee's Max account, resetting a step or marking it failed) is never one click: its
``GET`` shows what will happen and a reason field, its ``POST`` (CSRF) does it. A ``POST``
that lacks the page's confirmation marker or a required reason changes nothing and shows
the page again with the error inline (400); an action the rules refuse shows why (409).

A view builds its form (a subclass of :class:`ConfirmForm`), calls :func:`confirm_action`
and either returns its response or renders its own page (usually extending
``core/confirm.html``) with the outcome's ``refused`` and ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from migrator.db import get_session

REASON_MAX = 2000


def reason_validators(required: bool = True) -> list:
    first = (DataRequired(message=_l("A reason is required.")) if required
             else Optional())
    return [first, Length(max=REASON_MAX)]


class ConfirmForm(FlaskForm):
    """The confirmation page's form: the reason, and a marker only that page sends.

    Subclasses override ``reason`` (its label and description) and ``submit``; a view that
    needs the reason only sometimes calls :meth:`reason_optional` before validating.
    """

    confirmed = HiddenField()  # "1" on the page; checked when the reason is optional
    reason = TextAreaField(_l("Reason (required)"), validators=reason_validators(),
                           description=_l("It is kept in the audit trail."))
    submit = SubmitField(_l("Confirm"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_submitted():  # the page sends the marker; a one-click POST does not
            self.confirmed.data = "1"

    def reason_optional(self) -> None:
        """The reason may be left empty (it is still kept when given); the page's marker
        is then what tells a confirmed request from a one-click one."""
        self.confirmed.validators = [AnyOf(["1"], message=_l("Confirm the action on this "
                                                             "page."))]
        self.reason.validators = reason_validators(required=False)
        self.reason.flags.required = False
        self.reason.label.text = _l("Reason")

    @property
    def reason_text(self) -> str:
        return (self.reason.data or "").strip()[:REASON_MAX]


@dataclass
class Outcome:
    """What the view renders when the action was not done: why, and the status code."""

    refused: str | None = None
    status: int = 200
    response: ResponseReturnValue | None = None


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


def confirm_action(form: ConfirmForm, *, check: Callable[[], None] | None,
                   act: Callable[[], str], done: str | Callable[[], str],
                   refusals: tuple[type[Exception], ...] = ()) -> Outcome:
    """Run the confirmation flow of the current request.

    ``check()`` raises one of ``refusals`` when the action cannot be done at all (shown
    instead of the form). On a valid ``POST``, ``act()`` does the action (not committed) and
    returns the success message; it is committed, flashed and the browser sent to ``done``.
    A refusal raised by ``act()`` rolls back and shows its message (409).
    """
    refused, status = None, 200
    if check is not None:
        try:
            check()
        except refusals as exc:
            refused = _message(exc)
    if request.method != "POST":
        return Outcome(refused, status)
    if refused is not None:
        return Outcome(refused, 409)
    if not form.validate_on_submit():
        return Outcome(None, 400)
    try:
        message = act()
        get_session().commit()
    except refusals as exc:
        get_session().rollback()
        return Outcome(_message(exc), 409)
    flash(message, "success")
    target = done() if callable(done) else done
    return Outcome(None, 302, redirect(target))

"""Forms of the engine's confirmation pages (migrator/core/confirm.py)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SubmitField, TextAreaField

from migrator.core.confirm import ConfirmForm, reason_validators


class RollbackForm(ConfirmForm):
    """Confirm undoing a group's move, with the reason (kept in the audit trail)."""

    reason = TextAreaField(
        _l("Reason (required)"), validators=reason_validators(),
        description=_l("Why the move is undone. It is kept in the audit trail."))
    submit = SubmitField(_l("Undo the move"))


class ResetStepForm(ConfirmForm):
    """An administrator resets a step to a fresh pending one, with the reason."""

    reason = TextAreaField(
        _l("Reason (required)"), validators=reason_validators(),
        description=_l("Why the step is reset. It is kept in the audit trail."))
    submit = SubmitField(_l("Reset the step"))


class MarkFailedForm(ConfirmForm):
    """An administrator marks a step failed, with the reason (shown as its error)."""

    reason = TextAreaField(
        _l("Reason (required)"), validators=reason_validators(),
        description=_l("Shown as the step's error and kept in the audit trail."))
    submit = SubmitField(_l("Mark the step failed"))

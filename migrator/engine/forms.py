"""Forms of the engine's pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length


class RollbackForm(FlaskForm):
    """Confirm undoing a group's move, with the reason (kept in the audit trail)."""

    reason = TextAreaField(
        _l("Reason (required)"),
        validators=[DataRequired(message=_l("A reason is required.")), Length(max=2000)],
        description=_l("Why the move is undone. It is kept in the audit trail."))
    submit = SubmitField(_l("Undo the move"))

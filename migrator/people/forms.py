"""Forms of the employee pages: unbinding a Max account, keeping a questioned one."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from migrator.core.confirm import ConfirmForm, reason_validators

_REASON = reason_validators()


class UnlinkForm(ConfirmForm):
    """Unlink the employee's Max account, or unlink and invite them again (rebind)."""

    action = RadioField(
        _l("What to do"), default="rebind",
        choices=[SelectChoice("rebind",
                              _l("Unlink and send a new invitation to the employee's e-mail")),
                 SelectChoice("unlink", _l("Only unlink"))],
        validators=[DataRequired(message=_l("Choose what to do."))])
    reason = TextAreaField(
        _l("Reason (required)"), validators=_REASON,
        description=_l("Why the account is unlinked. It is kept in the audit trail."))
    submit = SubmitField(_l("Unlink the Max account"))


class KeepForm(ConfirmForm):
    """The coordinator checked the link: it is the employee's own account."""

    reason = TextAreaField(
        _l("Reason (required)"), validators=_REASON,
        description=_l("How you checked that the account is the employee's. It is kept in "
                       "the audit trail."))
    submit = SubmitField(_l("Keep the link"))

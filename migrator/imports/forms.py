"""Forms of the import pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, SubmitField
from wtforms.validators import DataRequired, Regexp

KIND_LABELS = {
    "organisations": _l("Organisations"),
    "employees": _l("Employees"),
    "groups": _l("Source groups"),
    "members": _l("Group members"),
    "transition_acts": _l("Register of transition orders"),
    "channels": _l("Public channels"),
}

UPLOAD_ID = r"^[A-Za-z0-9_-]{32}$"


class UploadForm(FlaskForm):
    kind = SelectField(_l("What to import"), validators=[DataRequired()])
    file = FileField(_l("File (CSV or XLSX)"), validators=[FileRequired()],
                     description=_l("CSV in UTF-8 or Windows-1251 with “,” or “;”, or an Excel "
                                    "workbook (first sheet). The first row holds the column "
                                    "names."))
    submit = SubmitField(_l("Check the file"))

    def __init__(self, kinds: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [(k, KIND_LABELS[k]) for k in kinds]


class ConfirmForm(FlaskForm):
    upload = HiddenField(validators=[DataRequired(), Regexp(UPLOAD_ID)])
    submit = SubmitField(_l("Import"))

"""Forms of the directive pages and of the register entry on an organisation's page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, FieldList, Form, FormField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from migrator.directives.models import METRICS

MILESTONE_ROWS = 4


class MilestoneForm(Form):
    metric = SelectField(_l("Metric"), choices=[SelectChoice("", "—"),
                                                *[SelectChoice(m, m) for m in METRICS]],
                         validators=[Optional()])
    target_percent = DecimalField(_l("Target, %"), places=None, validators=[Optional()])
    due = DateField(_l("Due date"), validators=[Optional()])


class DirectiveForm(FlaskForm):
    title = StringField(_l("Title"), description=_l("For example: «Поручение губернатора "
                                                    "№ 12 от 01.07.2025»"))
    issued_by = StringField(_l("Issued by"))
    issued_at = DateField(_l("Date of the directive"), validators=[Optional()],
                          description=_l("Every milestone's trajectory starts on this date."))
    scope_org = SelectField(_l("Scope: organisation and everything below it"), choices=[])
    milestones = FieldList(FormField(MilestoneForm), min_entries=MILESTONE_ROWS,
                           max_entries=MILESTONE_ROWS)

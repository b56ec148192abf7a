"""Forms of the wave pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from migrator.groups.models import PLATFORMS

DT_FORMAT = "%Y-%m-%dT%H:%M"
PLATFORM_LABELS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "viber": "Viber",
                   "vk": "VK", "other": _l("other messengers")}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DatesMixin:
    invite_at = DateTimeLocalField(_l("Invitations"), format=DT_FORMAT,
                                   validators=[InputRequired()])
    add_members_at = DateTimeLocalField(_l("Adding members"), format=DT_FORMAT,
                                        validators=[InputRequired()])
    announce_at = DateTimeLocalField(_l("Announcement"), format=DT_FORMAT,
                                     validators=[InputRequired()])
    cutover_at = DateTimeLocalField(_l("Cutover"), format=DT_FORMAT,
                                    validators=[InputRequired()])
    deadline = DateTimeLocalField(_l("Deadline"), format=DT_FORMAT,
                                  validators=[InputRequired()])


class WaveForm(DatesMixin, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=300)])
    org = SelectField(_l("Organisation (with its subordinates)"), validators=[Optional()])
    platforms = MultiCheckboxField(_l("Platforms"),
                                   choices=[SelectChoice(p, PLATFORM_LABELS[p]) for p in PLATFORMS],
                                   validators=[Optional()])
    group_keys = TextAreaField(_l("Groups (keys, one per line)"), validators=[Optional()],
                               description=_l("Fill it with “Select groups” or type keys."))
    select = SubmitField(_l("Select groups"))
    preview = SubmitField(lazy_pgettext("verb", "Check"))
    submit = SubmitField(_l("Create the wave"))


class RescheduleForm(DatesMixin, FlaskForm):
    submit = SubmitField(_l("Reschedule"))


class SettingsForm(FlaskForm):
    offset_add_members_days = IntegerField(_l("Adding members: days after the start"),
                                           validators=[InputRequired(), NumberRange(0, 365)])
    offset_announce_days = IntegerField(_l("Announcement: days after the start"),
                                        validators=[InputRequired(), NumberRange(0, 365)])
    offset_cutover_days = IntegerField(_l("Cutover: days after the start"),
                                       validators=[InputRequired(), NumberRange(0, 365)])
    offset_deadline_days = IntegerField(_l("Deadline: days after the start"),
                                        validators=[InputRequired(), NumberRange(0, 730)])
    coverage_threshold = IntegerField(_l("Coverage needed for the cutover, %"),
                                      validators=[InputRequired(), NumberRange(1, 100)])
    reminder_interval_days = IntegerField(_l("Days between reminders"),
                                          validators=[InputRequired(), NumberRange(1, 60)])
    max_reminders = IntegerField(_l("Reminders at most"),
                                 validators=[InputRequired(), NumberRange(0, 20)])
    announce_text = TextAreaField(_l("Welcome and rules message"),
                                  validators=[DataRequired(), Length(max=3000)],
                                  description=_l("{group} and {platform} are replaced."))
    footer = TextAreaField(_l("Footer: official correspondence stays e-mail and СЭД"),
                           validators=[DataRequired(), Length(max=900)],
                           description=_l("Mandatory: the announcement is never sent "
                                          "without it."))
    submit = SubmitField(_l("Save"))

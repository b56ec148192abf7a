"""Forms of the wave pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
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
from wtforms.widgets import CheckboxInput, ListWidget, Select

from migrator.groups.models import PLATFORMS

DT_FORMAT = "%Y-%m-%dT%H:%M"
PLATFORM_LABELS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "viber": "Viber",
                   "vk": "VK", "other": _l("other messengers")}
CHAT_STATE_LABELS = {"ready": _l("linked, the bot has its rights"),
                     "no_rights": _l("linked, the bot lacks rights or was removed"),
                     "no_chat": _l("no Max chat yet"),
                     "attention": _l("the group needs attention")}
# The planner's member filter: groups with at least one member in the state.
MEMBER_FILTER_LABELS = {
    "in_chat": _l("someone is in the Max chat"),
    "left": _l("someone left the Max chat"),
    "unaddable": _l("someone cannot be added"),
    "invited_by_link": _l("someone was sent the chat's join link"),
    "retrying": _l("someone is being added again"),
    "linked": _l("someone linked to Max is not added yet"),
    "reminded": _l("someone was reminded"),
    "invited": _l("someone was invited and has not pressed Start"),
    "not_invited": _l("someone is not invited yet"),
}


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


class PlainSelect(Select):
    """A select that writes a plain option (a text value, no extra attributes) directly:
    the same HTML as WTForms writes, for the planner's thousand organisations."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        if kwargs or choice.render_kw or not isinstance(choice.value, str):
            return super().render_option(choice, **kwargs)
        selected = " selected" if choice.selected else ""
        return Markup(f'<option{selected} value="{escape(choice.value)}">'  # noqa: S704
                      f"{escape(choice.label or choice.value)}</option>")


class WaveForm(DatesMixin, FlaskForm):
    """The planner: name and dates, the group filter, the picked groups (hidden ``picked``
    keys carried from page to page, ``check`` boxes of the page shown) and the actions."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=300)])
    org = SelectField(_l("Organisation (with its subordinates)"), validators=[Optional()],
                      widget=PlainSelect())
    platforms = MultiCheckboxField(_l("Platforms"),
                                   choices=[SelectChoice(p, PLATFORM_LABELS[p]) for p in PLATFORMS],
                                   validators=[Optional()])
    chat_state = SelectField(_l("Max chat"), validators=[Optional()],
                             choices=[SelectChoice("", _l("any")),
                                      *(SelectChoice(k, v) for k, v in CHAT_STATE_LABELS.items())])
    member_state = SelectField(_l("Members"), validators=[Optional()])
    q = StringField(_l("Name or key contains"), validators=[Optional(), Length(max=200)])
    find = SubmitField(_l("Find groups"))
    pick_all = SubmitField(_l("Pick every group found"))
    clear = SubmitField(_l("Clear the selection"))
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

"""Forms of the training sandbox page (each posted on its own; the choices come from the
sandbox)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from migrator.demo.training import BOT_RIGHTS
from migrator.max.views import PERMISSION_LABELS
from migrator.waves.forms import MultiCheckboxField

DEEP_LINK = r"^https://max\.ru/[A-Za-z0-9_.]+\?start=[A-Za-z0-9_-]{1,64}$"


class ChatForm(FlaskForm):
    title = StringField(_l("Chat title"), validators=[DataRequired(), Length(max=200)])
    owner = SelectField(_l("Owner (creates the chat)"), coerce=int)
    submit = SubmitField(_l("Create the chat"))


class BotForm(FlaskForm):
    chat = SelectField(_l("Chat"), coerce=int)
    is_admin = BooleanField(_l("Administrator"), default=True)
    rights = MultiCheckboxField(_l("The bot's rights"),
                                choices=[SelectChoice(r, PERMISSION_LABELS[r]) for r in BOT_RIGHTS],
                                default=[r for r in BOT_RIGHTS if r != "write"])
    add = SubmitField(_l("Add the bot"))
    change = SubmitField(_l("Change the bot's rights"))
    remove = SubmitField(_l("Remove the bot"))


class MemberForm(FlaskForm):
    chat = SelectField(_l("Chat"), coerce=int)
    person = SelectField(_l("Person"), coerce=int)
    submit = SubmitField(_l("Add to the chat"))


class PersonForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Optional(), Length(max=100)])
    allow_add = BooleanField(_l("Lets bots add them to chats"), default=True,
                             description=_l("Untick to play a person whose privacy settings "
                                            "refuse being added."))
    submit = SubmitField(_l("Create the person"))


class StartForm(FlaskForm):
    person = SelectField(_l("Person in Max"))
    invitation = SelectField(_l("Invitation of an employee"))
    link = StringField(_l("Or the link from the e-mail"),
                       validators=[Optional(), Length(max=300),
                                   Regexp(DEEP_LINK, message=_l(
                                       "Paste the whole link, like "
                                       "https://max.ru/bot_name?start=…"))],
                       description=_l("Without an invitation or a link the person just "
                                      "presses Start in the bot's dialog."))
    submit = SubmitField(_l("Press Start"))

"""Forms for linking source groups and Max chats."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional


class LinkGroupForm(FlaskForm):
    """On a chat's page: pick one of the unlinked groups in scope (value: group key)."""

    group = SelectField(_l("Source group"), choices=[], validators=[InputRequired()],
                        validate_choice=False)


class LinkChatForm(FlaskForm):
    """On a group's page: pick one of the visible chats the bot is in (value: max_chat.id)."""

    chat = SelectField(_l("Max chat"), choices=[], validators=[InputRequired()],
                       validate_choice=False)


class RegisterChatForm(FlaskForm):
    """«Добавить чат по ID»: a chat whose ``bot_added`` was missed (value: Max chat id)."""

    chat_id = IntegerField(_l("Max chat ID"), validators=[InputRequired()])
    org = StringField(_l("Organisation code"), validators=[Optional(), Length(max=64)])

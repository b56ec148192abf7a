"""Forms for linking source groups and Max chats."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from migrator.core.confirm import ConfirmForm, reason_validators


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


class UnlinkGroupForm(ConfirmForm):
    """Unlink a group from its Max chat; the reason is required while the group's wave has
    steps to run (migrator/core/confirm.py)."""

    reason = TextAreaField(
        _l("Reason (required)"), validators=reason_validators(),
        description=_l("Why the group is unlinked. It is kept in the audit trail."))
    submit = SubmitField(_l("Unlink the group from the chat"))

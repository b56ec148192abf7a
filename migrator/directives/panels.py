"""The organisation page's panels: its transition order (the register) and its public
channels."""

from __future__ import annotations

from flask_login import current_user

from migrator.auth.service import can_write
from migrator.core.panels import register_panel
from migrator.directives import channels, register
from migrator.directives.models import EXEMPTIONS


def _act_context(org) -> dict:
    return {"org": org, "act": register.get_act(org), "exemptions": EXEMPTIONS,
            "exemption_labels": register.EXEMPTION_LABELS, "errors": {},
            "can_write": can_write(current_user)}


def _channels_context(org) -> dict:
    return {"org": org, "channels": channels.org_channels(org),
            "status_labels": channels.STATUS_LABELS}


register_panel("organisation", "directives/_act_panel.html", _act_context, order=20)
register_panel("organisation", "directives/_channels_panel.html", _channels_context, order=21)

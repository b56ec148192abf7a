"""The register of transition orders: each organisation's internal act (with an optional
scan kept under ``instance/``) or its exemption with a reason."""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l

from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.directives.models import EXEMPTIONS, TransitionAct
from migrator.directives.service import DirectiveError
from migrator.org.models import Organisation

log = logging.getLogger("migrator.directives")

SCAN_MAX_BYTES = 10 * 1024 * 1024
SCAN_DIR = "transition_acts"
EXEMPTION_LABELS = {
    "arm_gs": _l("ARM GS (VK Teams)"),
    "departmental": _l("Departmental system"),
    "other": _l("Other reason"),
}
# Signatures of the accepted scan types: the type is taken from the content, not the name.
SIGNATURES = ((b"%PDF-", "pdf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))


def files_dir() -> Path:
    """Where scans and produced reports are kept: ``instance/`` (``DIRECTIVE_FILES_DIR``
    overrides it, for tests)."""
    return Path(current_app.config.get("DIRECTIVE_FILES_DIR") or current_app.instance_path)


def scan_type(data: bytes) -> str | None:
    for magic, kind in SIGNATURES:
        if data.startswith(magic):
            return kind
    return None


EXEMPTION_ALIASES = {"арм гс": "arm_gs", "арм гс (vk teams)": "arm_gs", "vk teams": "arm_gs",
                     "ведомственная система": "departmental", "другое": "other",
                     "иное": "other"}


def parse_date_text(text: str | None) -> date | str | None:
    """A date from ``YYYY-MM-DD`` (an Excel date cell too) or ``DD.MM.YYYY``; the text
    itself when it is neither (so that the check reports it), ``None`` when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        day, month, year = (int(p) for p in text.split("."))
        return date(year, month, day)
    except ValueError:
        return text


def get_act(org: Organisation) -> TransitionAct | None:
    return get_session().get(TransitionAct, org.id)


def check_act(act_number: str | None, act_date, exemption: str | None,
              exemption_reason: str | None) -> tuple[dict, dict]:
    """Validated values and errors for one register entry (an act or an exemption)."""
    errors: dict = {}
    number = (act_number or "").strip()
    reason = (exemption_reason or "").strip()
    exemption = (exemption or "").strip() or None
    if exemption is not None:
        exemption = EXEMPTION_ALIASES.get(exemption.lower(), exemption.lower())
    if isinstance(act_date, str):
        text = act_date.strip()
        try:
            act_date = date.fromisoformat(text) if text else None
        except ValueError:
            errors["act_date"] = _l("a date as YYYY-MM-DD is required")
            act_date = None
    if exemption is not None:
        if exemption not in EXEMPTIONS:
            errors["exemption"] = _l("unknown exemption; allowed: %(values)s",
                                     values=", ".join(EXEMPTIONS))
        if number or act_date:
            errors["exemption"] = _l("give either an act or an exemption, not both")
        if exemption == "other" and not reason:
            errors["exemption_reason"] = _l("say why the organisation is exempt")
        if len(reason) > 500:
            errors["exemption_reason"] = _l("the value is longer than %(max)d characters",
                                            max=500)
        values = {"act_number": None, "act_date": None, "exemption": exemption,
                  "exemption_reason": reason or None}
    else:
        if not number:
            errors["act_number"] = _l("give the act's number or choose an exemption")
        elif len(number) > 100:
            errors["act_number"] = _l("the value is longer than %(max)d characters", max=100)
        if act_date is None and "act_date" not in errors:
            errors["act_date"] = _l("a date as YYYY-MM-DD is required")
        values = {"act_number": number, "act_date": act_date, "exemption": None,
                  "exemption_reason": None}
    return values, errors


def save_act(org: Organisation, values: dict, user=None, scan: bytes | None = None
             ) -> tuple[TransitionAct, bool]:
    """Write ``org``'s register entry (``values`` from :func:`check_act`) in the caller's
    transaction, with an audit event. Returns ``(act, changed)``."""
    session = get_session()
    if scan is not None:
        if len(scan) > SCAN_MAX_BYTES:
            raise DirectiveError({"scan": _l("the scan is larger than 10 MB")})
        kind = scan_type(scan)
        if kind is None:
            raise DirectiveError({"scan": _l("the scan must be a PDF, PNG or JPEG file")})
        if values.get("exemption"):
            raise DirectiveError({"scan": _l("a scan belongs to an act, not to an exemption")})
    act = session.get(TransitionAct, org.id)
    created = act is None
    if created:
        act = TransitionAct(org_id=org.id, **values)
    changed = created or any(getattr(act, k) != v for k, v in values.items())
    for k, v in values.items():
        setattr(act, k, v)
    if values.get("exemption"):
        act.scan_path = act.scan_type = act.scan_sha256 = None
    if scan is not None:
        digest = hashlib.sha256(scan).hexdigest()
        rel = f"{SCAN_DIR}/{org.id}-{digest[:16]}.{'jpg' if kind == 'jpeg' else kind}"
        path = files_dir() / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(scan)
        tmp.replace(path)
        changed = changed or act.scan_sha256 != digest
        act.scan_path, act.scan_type, act.scan_sha256 = rel, kind, digest
    if not changed:
        return act, False
    act.updated_at = utcnow()
    act.updated_by_id = getattr(user, "id", None)
    session.add(act)
    session.flush()
    record("transition_act.saved", object_type="organisation", object_id=org.code,
           org_id=org.id, summary={"act_number": act.act_number,
                                   "act_date": act.act_date.isoformat() if act.act_date
                                   else None,
                                   "exemption": act.exemption,
                                   "exemption_reason": act.exemption_reason,
                                   "scan_sha256": act.scan_sha256})
    log.info("transition act of %s saved by %s", org.code, getattr(user, "email", "system"))
    return act, True


def scan_file(act: TransitionAct) -> Path | None:
    if not act or not act.scan_path:
        return None
    path = files_dir() / act.scan_path
    return path if path.is_file() else None


def act_dict(act: TransitionAct | None, org: Organisation) -> dict:
    return {
        "org_code": org.code,
        "act_number": act.act_number if act else None,
        "act_date": act.act_date.isoformat() if act and act.act_date else None,
        "exemption": act.exemption if act else None,
        "exemption_reason": act.exemption_reason if act else None,
        "has_scan": bool(act and act.scan_path),
        "scan_sha256": act.scan_sha256 if act else None,
        "updated_at": act.updated_at.isoformat() if act else None,
    }

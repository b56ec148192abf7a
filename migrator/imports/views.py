"""The import pages: upload → preview (or every error) → confirm; CSV templates."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from migrator.auth.service import roles_required
from migrator.imports.forms import KIND_LABELS, UPLOAD_ID, ConfirmForm, UploadForm
from migrator.imports.parser import KINDS, SPECS
from migrator.imports.service import import_file

bp = Blueprint("imports", __name__, url_prefix="/imports")
log = logging.getLogger("migrator.imports")

UPLOAD_MAX_AGE = 24 * 3600  # uploads never confirmed are removed after a day

EXAMPLES = {
    "organisations": [["REG", "Департамент информатизации", "", "head@example.ru"],
                      ["SCH-1", "Школа № 1", "REG", "school1@example.ru"]],
    "employees": [["ivanova@example.ru", "Иванова Анна Петровна", "SCH-1", "Директор",
                   "+7 900 000-00-00"]],
    "groups": [["sch1-teachers", "Учителя школы № 1", "whatsapp", "SCH-1",
                "ivanova@example.ru"]],
    "members": [["sch1-teachers", "ivanova@example.ru"]],
    "transition_acts": [["SCH-1", "12-од", "2025-11-20", "", ""],
                        ["REG", "", "", "arm_gs", "Работает в АРМ ГС (VK Teams)"]],
    "channels": [["SCH-1", "telegram", "https://t.me/school1", "Новости школы № 1",
                  "https://max.ru/school1", "duplicated"]],
}


def _kinds() -> list[str]:
    return list(KINDS) if current_user.role == "admin" else [k for k in KINDS
                                                             if k != "organisations"]


def _upload_dir() -> Path:
    """Where uploads wait between preview and confirmation (``IMPORT_UPLOAD_DIR``)."""
    path = Path(current_app.config.get("IMPORT_UPLOAD_DIR")
                or Path(current_app.instance_path) / "uploads")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _store_upload(kind: str, filename: str, data: bytes) -> str:
    folder = _upload_dir()
    cutoff = time.time() - UPLOAD_MAX_AGE
    for old in folder.glob("*.*"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
    upload_id = secrets.token_urlsafe(24)
    (folder / f"{upload_id}.bin").write_bytes(data)
    meta = {"user_id": current_user.id, "kind": kind, "filename": filename}
    (folder / f"{upload_id}.json").write_text(json.dumps(meta), encoding="utf-8")
    return upload_id


def _load_upload(upload_id: str | None) -> tuple[dict, bytes] | None:
    """The stored upload of the current user; ``None`` if unknown, expired or someone else's."""
    if not re.fullmatch(UPLOAD_ID, upload_id or ""):
        return None
    folder = _upload_dir()
    try:
        meta = json.loads((folder / f"{upload_id}.json").read_text(encoding="utf-8"))
        data = (folder / f"{upload_id}.bin").read_bytes()
    except (OSError, ValueError):
        return None
    if meta.get("user_id") != current_user.id or meta.get("kind") not in _kinds():
        return None
    return meta, data


def _drop_upload(upload_id: str) -> None:
    for suffix in (".bin", ".json"):
        (_upload_dir() / f"{upload_id}{suffix}").unlink(missing_ok=True)


def _read_file(storage, limit: int) -> bytes:
    return storage.stream.read(limit + 1)


@bp.route("/", methods=["GET", "POST"])
@roles_required("admin", "coordinator")
def upload():
    form = UploadForm(_kinds())
    if not form.is_submitted():
        form.kind.data = form.kind.data or "employees"
    if form.validate_on_submit():
        storage = form.file.data
        filename = Path(storage.filename or "upload").name[:200]
        data = _read_file(storage, current_app.config["IMPORT_MAX_BYTES"])
        kind = form.kind.data
        result = import_file(kind, filename, data, dry_run=True,
                             user=current_user._get_current_object())
        upload_id = _store_upload(kind, filename, data) if result.ok else None
        confirm = ConfirmForm(upload=upload_id) if result.ok else None
        status = 200 if result.ok else 422
        return render_template("imports/preview.html", result=result, confirm=confirm,
                               kind_label=KIND_LABELS[kind], form=form), status
    status = 400 if form.is_submitted() else 200
    return render_template("imports/upload.html", form=form, kinds=_kinds(),
                           kind_labels=KIND_LABELS, specs=SPECS), status


@bp.post("/confirm")
@roles_required("admin", "coordinator")
def confirm():
    form = ConfirmForm()
    upload_id = form.upload.data
    loaded = _load_upload(upload_id) if form.validate_on_submit() else None
    if loaded is None:
        flash(_("This upload is no longer available. Please upload the file again."), "error")
        return redirect(url_for("imports.upload"))
    meta, data = loaded
    kind = meta["kind"]
    # Validated again: the data may have changed since the preview.
    result = import_file(kind, meta["filename"], data, dry_run=False,
                         user=current_user._get_current_object())
    if not result.ok:
        _drop_upload(upload_id)
        return render_template("imports/preview.html", result=result, confirm=None,
                               kind_label=KIND_LABELS[kind],
                               form=UploadForm(_kinds(), kind=kind)), 422
    _drop_upload(upload_id)
    log.info("%s imported %s from %r", current_user.email, kind, meta["filename"])
    if kind == "members":
        flash(ngettext("Imported: %(num)d new membership; %(same)d were already there.",
                       "Imported: %(num)d new memberships; %(same)d were already there.",
                       result.created, same=result.unchanged), "success")
    else:
        flash(_("Imported: %(created)d created, %(updated)d updated, %(same)d unchanged.",
                created=result.created, updated=result.updated, same=result.unchanged),
              "success")
    return redirect(url_for("imports.upload"))


@bp.get("/template/<kind>.csv")
@roles_required("admin", "coordinator")
def template(kind: str):
    """An example file to fill in: UTF-8 with BOM and ``;``, as Russian Excel opens it."""
    if kind not in _kinds():
        abort(404)
    lines = [";".join(SPECS[kind].columns)] + [";".join(r) for r in EXAMPLES[kind]]
    body = "\ufeff" + "\r\n".join(lines) + "\r\n"
    return Response(body.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'})

"""Identity safety: who pressed whose invitation.

Two signals for a coordinator, both attention items on the employee (subject ``member``,
no group), raised in the transaction of the Start press:

* ``identity_conflict`` «Возможна чужая привязка»: a second Max account pressed an
  invitation already used by another account (a forwarded e-mail?). The app cannot tell
  which account is the rightful one; the coordinator decides. Audited as
  ``identity.conflict``.
* ``name_mismatch``: a link was made, but the employee's surname does not appear in the Max
  profile's first or last name (both sides normalised: lower case, ё→е, Latin transliterated
  to Cyrillic, soft and hard signs dropped, й/ы read as и).
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from migrator.attention.service import open_item, raise_item, resolve
from migrator.audit.service import record
from migrator.groups import attention as reasons
from migrator.people.models import Employee

# longest first: digraphs before single letters
_LATIN = sorted({
    "shch": "щ", "sch": "щ", "zh": "ж", "kh": "х", "ts": "ц", "tz": "ц", "ch": "ч",
    "sh": "ш", "yu": "ю", "iu": "ю", "ya": "я", "ia": "я", "yo": "е", "jo": "е", "ye": "е",
    "ae": "е", "a": "а", "b": "б", "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х",
    "i": "и", "j": "й", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к",
    "r": "р", "s": "с", "t": "т", "u": "у", "v": "в", "w": "в", "x": "кс", "y": "й", "z": "з",
}.items(), key=lambda kv: -len(kv[0]))
_LATIN_RE = re.compile("|".join(re.escape(k) for k, _v in _LATIN))
_LATIN_MAP = dict(_LATIN)
_FOLD = str.maketrans({"ё": "е", "э": "е", "й": "и", "ы": "и", "ъ": None, "ь": None})


def normalise(name: str | None) -> str:
    """Lower case, Latin transliterated to Cyrillic, ё→е and the letters transliteration
    cannot tell apart folded; only letters and single spaces remain."""
    text = (name or "").lower()
    text = _LATIN_RE.sub(lambda m: _LATIN_MAP[m.group(0)], text)
    text = text.translate(_FOLD)
    return " ".join(re.sub(r"[^а-я]+", " ", text).split())


def surname_of(full_name: str | None) -> str:
    """The surname: the first word of ``full_name`` ("Иванов Иван Иванович")."""
    words = (full_name or "").split()
    return words[0] if words else ""


def surname_matches(full_name: str | None, max_name: str | None) -> bool:
    """Whether the employee's surname appears in the Max profile's name (normalised).
    Without a surname or a profile name there is nothing to compare: no flag."""
    surname = normalise(surname_of(full_name))
    profile = normalise(max_name)
    if not surname or not profile:
        return True
    return surname in profile


def check_name(emp: Employee, max_user_id: int, max_name: str | None) -> bool:
    """Flag a fresh link for review when the names do not match; True if flagged."""
    if surname_matches(emp.full_name, max_name):
        return False
    raise_item("member", emp.id, reasons.NAME_MISMATCH, org_id=emp.org_id,
               max_user_id=max_user_id, max_name=(max_name or "")[:200])
    return True


def used_by_another(emp: Employee, bound_max_user_id: int | None, max_user_id: int,
                    max_name: str | None, token_id: int | None) -> None:
    """A second account pressed this employee's used invitation: audit and raise the item."""
    record("identity.conflict", object_type="employee", object_id=emp.id, org_id=emp.org_id,
           summary={"max_user_id": max_user_id, "bound_max_user_id": bound_max_user_id,
                    "max_name": (max_name or "")[:200] or None, "token_id": token_id})
    raise_item("member", emp.id, reasons.IDENTITY_CONFLICT, org_id=emp.org_id,
               max_user_id=max_user_id, bound_max_user_id=bound_max_user_id,
               max_name=(max_name or "")[:200])


CODES = (reasons.IDENTITY_CONFLICT, reasons.NAME_MISMATCH)


class KeepRefused(Exception):
    """Nothing to keep (``conflict``) or no reason (``invalid``)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def open_items(emp: Employee) -> list:
    """The employee's open identity items (a possible foreign link, a name mismatch)."""
    return [item for code in CODES
            if (item := open_item("member", emp.id, code)) is not None]


def keep_link(emp: Employee, reason: str, user=None) -> int:
    """The coordinator decided the binding is right: the identity items are resolved, the
    decision audited as ``identity.kept`` with its reason (not committed)."""
    reason = (reason or "").strip()
    if not reason:
        raise KeepRefused("invalid", str(_l("A reason is required.")))
    items = open_items(emp)
    if not items:
        raise KeepRefused("conflict", str(_l("There is nothing to review for this "
                                             "employee's Max account.")))
    record("identity.kept", object_type="employee", object_id=emp.id, org_id=emp.org_id,
           summary={"reason": reason[:500], "max_user_id": emp.max_user_id,
                    "codes": [item.code for item in items],
                    "by": getattr(user, "email", None)})
    return resolve("member", emp.id, CODES)

"""The cutover: waits for coverage (or an override), then for the coordinator."""

from __future__ import annotations

import logging

from sqlmodel import select

from migrator.db import get_session
from migrator.engine.models import Step
from migrator.engine.outcomes import Outcome, Postpone, cfg
from migrator.groups.models import SourceGroup
from migrator.groups.service import coverage
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.engine")


# -- cutover -----------------------------------------------------------------------------


def cutover_blocker(step: Step, group: SourceGroup) -> str | None:
    """Why the cutover cannot wait for confirmation yet (None: it can)."""
    announce = get_session().exec(
        select(Step).where(Step.group_id == group.id, Step.kind == "announce")).first()
    if announce is not None and announce.status not in ("succeeded", "skipped"):
        return "the announcement is not confirmed yet"
    if step.override_at is not None:
        return None
    in_chat, total = coverage(group)
    threshold = get_setting("coverage_threshold")
    if total == 0 or in_chat * 100 < threshold * total:
        pct = round(100 * in_chat / total) if total else 0
        return f"coverage {pct}% ({in_chat}/{total}) is below {threshold}%"
    return None


def run_cutover(step, group, client_factory, rid) -> Outcome:
    blocker = cutover_blocker(step, group)
    if blocker:
        raise Postpone(blocker, cfg("CUTOVER_RECHECK_SECONDS"))
    # The coordinator now closes the old group and confirms.
    return Outcome("waiting", info={"override": step.override_at is not None})

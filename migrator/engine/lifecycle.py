"""A step's lifecycle: the one table of allowed status changes, and the one place they happen.

Every change of ``Step.status`` goes through :func:`move`, which refuses a change the table
does not allow and then announces it with the :data:`step_moved` signal. Other features
hear about steps only through that signal (``waves`` activates a wave when its first step
has run); the engine imports nothing of theirs for it.

Bulk promotions ``pending`` → ``due`` (:func:`migrator.engine.runner.promote_due`) and the
wave pause/resume updates are single UPDATEs over rows in the listed source states; they
are in the table too.
"""

from __future__ import annotations

from datetime import datetime

from blinker import Namespace

from migrator.db import get_session, utcnow
from migrator.engine.models import STEP_STATUSES, Step

_signals = Namespace()
# sender: the Step; keyword arguments: before, after
step_moved = _signals.signal("step-moved")

FINISHED = ("succeeded", "skipped")

# status -> the statuses it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    # planned, not yet due: promoted, paused with its wave, skipped, (admin) failed, a
    # cutover overridden below the threshold (waits for the coordinator's confirmation), or
    # a parallel run finished by the cutover's confirmation
    "pending": frozenset({"due", "running", "paused", "skipped", "failed", "waiting",
                          "succeeded"}),
    # claimed by a runner, rescheduled to a later time, paused, skipped, (admin) failed,
    # an overridden cutover, a parallel run finished by the cutover's confirmation
    "due": frozenset({"running", "pending", "paused", "skipped", "failed", "waiting",
                      "succeeded"}),
    # the runner's outcome; a lease taken over by another runner stays running
    "running": frozenset({"running", "due", "pending", "waiting", "succeeded", "failed",
                          "paused", "skipped"}),
    # a coordinator confirms, skips, pauses; an admin resets or marks it failed
    "waiting": frozenset({"succeeded", "due", "pending", "paused", "skipped", "failed"}),
    # re-opened (more people to add) or reset by an admin, or cancelled by a rollback
    "succeeded": frozenset({"due", "pending", "skipped"}),
    # retried, rescheduled, skipped, paused, reset, an overridden cutover
    "failed": frozenset({"due", "pending", "skipped", "paused", "waiting"}),
    # reset by an admin
    "skipped": frozenset({"due", "pending"}),
    # resumed (due now or later), skipped, (admin) failed, an overridden cutover
    "paused": frozenset({"due", "pending", "skipped", "failed", "waiting"}),
}
assert set(TRANSITIONS) == set(STEP_STATUSES)


class IllegalStepTransition(ValueError):
    """A step status change that the transition table does not allow."""

    def __init__(self, step: Step, after: str):
        super().__init__(f"step {step.kind} of group {step.group_id} cannot move from "
                         f"{step.status!r} to {after!r}")
        self.before, self.after = step.status, after


def allowed(before: str, after: str) -> bool:
    return after in TRANSITIONS.get(before, frozenset())


def sources_of(after: str) -> tuple[str, ...]:
    """The statuses from which a step may move to ``after`` (for bulk UPDATEs)."""
    return tuple(s for s in STEP_STATUSES if allowed(s, after))


def move(step: Step, after: str, *, at: datetime | None = None) -> None:
    """Change the step's status (not committed); raises :class:`IllegalStepTransition`."""
    before = step.status
    if before == after:
        return
    if not allowed(before, after):
        raise IllegalStepTransition(step, after)
    step.status = after
    step.updated_at = at or utcnow()
    get_session().add(step)
    step_moved.send(step, before=before, after=after)

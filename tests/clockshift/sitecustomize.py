"""Moves the clock of every Python subprocess the tests start (servers, runners, CLIs).

The test session puts this folder on ``PYTHONPATH`` when ``MIGRATOR_TEST_CLOCK_SHIFT_DAYS``
is set, so a process started from a test sees the same shifted "now" as the test itself.
"""

import os

_days = int(os.environ.get("MIGRATOR_TEST_CLOCK_SHIFT_DAYS") or 0)
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=_days), tick=True).start()

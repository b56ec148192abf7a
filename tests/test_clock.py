"""The clock-shift switch really moves "now", in the test process and in its subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

CLOCK_SHIFT_DAYS = int(os.environ.get("MIGRATOR_TEST_CLOCK_SHIFT_DAYS") or 0)

pytestmark = pytest.mark.skipif(not CLOCK_SHIFT_DAYS,
                                reason="only in the run with MIGRATOR_TEST_CLOCK_SHIFT_DAYS set")


def _real_now() -> datetime:
    # The file system's clock is not patched: a fresh file's mtime is the real time.
    out = subprocess.run([sys.executable, "-S", "-c",
                          "import os,tempfile;f=tempfile.NamedTemporaryFile();"
                          "print(os.fstat(f.fileno()).st_mtime)"],
                         capture_output=True, text=True, check=True, env={})
    return datetime.fromtimestamp(float(out.stdout), UTC)


def test_now_is_shifted_here_and_in_subprocesses():
    real = _real_now()
    expected = timedelta(days=CLOCK_SHIFT_DAYS)
    assert abs(datetime.now(UTC) - real - expected) < timedelta(minutes=5)
    code = "from datetime import datetime, UTC; print(datetime.now(UTC).isoformat())"
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, check=True)
    child = datetime.fromisoformat(out.stdout.strip())
    assert abs(child - real - expected) < timedelta(minutes=5)

"""The WSGI entry point builds the app once and keeps its long-lived objects out of the
garbage collector's way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_entry_point_freezes_what_it_loaded(tmp_path):
    code = ("import gc, flask, app; print(gc.get_freeze_count()); "
            "print(isinstance(app.app, flask.Flask))")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "k" * 40,
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert int(out[0]) > 50_000 and out[1] == "True"

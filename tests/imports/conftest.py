"""Helpers for import tests: write files and run ``flask import`` without lock clashes."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _upload_dir(app_config, tmp_path):
    """Uploads waiting for confirmation go to the test's own folder."""
    app_config["IMPORT_UPLOAD_DIR"] = str(tmp_path / "uploads")


@pytest.fixture
def write_file(tmp_path):
    def write(name: str, text: str | bytes, encoding: str = "utf-8"):
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        return path

    return write


@pytest.fixture
def run_import(runner, ctx):
    """``run_import(kind, path, *options)`` → click result; the test session is released
    first (SQLite writers queue for one lock) and refreshed after."""

    def run(kind, path, *options):
        ctx.rollback()
        result = runner.invoke(args=["import", kind, str(path), *options])
        ctx.rollback()
        return result

    return run

"""WSGI entry point: ``gunicorn app:app`` or ``flask --app app ...``."""

import gc

from migrator import create_app

app = create_app()

# Everything loaded so far (modules, models, the app) lives as long as the process: moved out
# of the collector's generations, a full collection no longer walks those ~170,000 objects in
# the middle of a request (it cost a region-wide report up to 150 ms at its 95th percentile).
gc.freeze()

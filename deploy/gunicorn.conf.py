"""gunicorn settings for Migrator (``gunicorn --config deploy/gunicorn.conf.py app:app``).

Read by the ``migrator-web`` systemd unit; the environment (``/etc/migrator/migrator.env``)
may override the address and the worker count. The app itself writes one log line per
request with its request id (``LOG_FORMAT=json`` for log collectors), so gunicorn's access
log is off unless ``GUNICORN_ACCESS_LOG`` names a file (``-``: standard output).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")  # nginx proxies to it
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
threads = 4
# An import of IMPORT_MAX_BYTES (20 MiB) is parsed inside the request: allow two minutes.
timeout = 120
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (memory growth in long campaigns), not all at once.
max_requests = 2000
max_requests_jitter = 200
# nginx on this host sets X-Forwarded-Proto; MIGRATOR_TRUSTED_PROXIES=1 lets the app read
# X-Forwarded-For and -Proto from it (werkzeug's ProxyFix), gunicorn trusts it as well.
forwarded_allow_ips = "127.0.0.1,::1"
proxy_allow_ips = "127.0.0.1,::1"

errorlog = "-"
loglevel = "info"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# Client (from nginx), request line, status, bytes, duration, and the request id nginx
# passes in X-Request-Id (the app returns it in the response's X-Request-Id).
access_log_format = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def child_exit(server, worker):
    """A worker ended: its live gauges leave the shared Prometheus directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

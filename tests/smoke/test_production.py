"""The production stack, started the way deploy/ starts it, with a tiny migration through it.

PostgreSQL (``TEST_DATABASE_URL``), gunicorn with ``MIGRATOR_ENV=production`` and
deploy/gunicorn.conf.py (the web unit's ExecStart), the scheduler (its unit's ExecStart), a
run-due worker (the template unit's ExecStart), and Debian's nginx on port 443 with
deploy/nginx-migrator.conf and a certificate of a CA made here. The Max sandbox delivers
its webhooks over HTTPS through nginx and trusts that CA only.

What the test changes in deploy/'s files, besides /opt/migrator becoming this checkout:
the server name becomes ``localhost``, the certificate paths point at the test CA's files,
the upstream port is gunicorn's free port, and the plain-HTTP listener (port 80) moves to a
free port so an nginx the distribution may have started does not collide (IPv6 listeners
go when the machine has no IPv6). The environment file is replaced by the test's
environment, and PROMETHEUS_MULTIPROC_DIR by a temporary directory.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from deploy_helpers import ROOT, exec_start, localised, unit_environment, unit_settings
from prometheus_client.parser import text_string_to_metric_families
from smtp_helpers import SmtpSink

from migrator.db import make_engine
from migrator.demo.actors import token_from_text
from migrator.sandbox.client import SandboxControl

TOKEN = "smoke-bot-token-0123456789"
# production refuses secrets that are short or do not look random
SECRET = secrets.token_urlsafe(32)
ADMIN = "admin@region.example"
PASSWORD = "correct-horse-battery-staple"
PERMS = ["read_all_messages", "add_remove_members", "pin_message", "write"]
WAIT = 120.0  # seconds for anything the processes do on a loaded CI machine


def _nginx() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                     else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: .ci/run installs it with apt-get")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait(what: str, fn, timeout: float = WAIT, procs=None):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        for proc in procs or ():
            assert proc.poll() is None, f"{proc.args[0]} exited while waiting for {what}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(d: Path) -> dict[str, Path]:
    """A test CA and a certificate for localhost signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Migrator smoke test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext",
             cwd=d)
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx-migrator.conf no longer contains {old!r}"
    return text.replace(old, new)


def nginx_conf(d: Path, certs: dict, upstream_port: int, http_port: int) -> Path:
    site = localised("nginx-migrator.conf")
    site = _replace(site, "migrator.example.ru", "localhost")
    site = _replace(site, "/etc/migrator/tls/fullchain.pem", str(certs["cert"]))
    site = _replace(site, "/etc/migrator/tls/privkey.pem", str(certs["key"]))
    site = _replace(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    site = _replace(site, "listen 80;", f"listen {http_port};")
    site = _replace(site, "listen [::]:80;", f"listen [::]:{http_port};")
    site = _replace(site, "/var/www/html", str(d / "www"))
    if not Path("/proc/net/if_inet6").exists():
        site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (d / "www").mkdir()
    (d / "site.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {d / ('nginx-' + kind)};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""{user}worker_processes 1;
pid {d / 'nginx.pid'};
error_log {d / 'nginx-error.log'} info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {d / 'nginx-access.log'};
{temp}
    include {d / 'site.conf'};
}}
""")
    return conf


class Stack:
    """The processes started by the test, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, d: Path):
        self.d = d
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict, cwd: Path = ROOT):
        log = (self.d / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = self.d / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def logs(self) -> str:
        out = []
        for proc in self.procs:
            text = proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
            out.append(f"--- {proc.args[0]} (exit {proc.poll()}) ---\n{text[-3000:]}")
        for name in ("nginx-error.log",):
            path = self.d / name
            if path.exists():
                out.append(f"--- {name} ---\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(out)


def flask(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", *args],
                            cwd=ROOT, env=env, input=stdin, capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, f"flask {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def reset_database(url: str) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def write_csv(d: Path, name: str, rows: list[str]) -> str:
    path = d / f"{name}.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def iso(dt: datetime) -> str:
    return dt.astimezone(ZoneInfo("Asia/Yekaterinburg")).isoformat()


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    yield s
    s.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_production_stack(tmp_path, stack):
    nginx = _nginx()
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.fail("the smoke test needs PostgreSQL: TEST_DATABASE_URL (make smoke sets it)")
    assert not _listening(443), "port 443 is taken: the smoke test runs nginx there"
    certs = make_certificates(tmp_path)
    reset_database(url)
    smtp = SmtpSink().start()
    try:
        _run(tmp_path, stack, nginx, url, certs, smtp)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        smtp.stop()


def _run(d: Path, stack: Stack, nginx: str, url: str, certs: dict, smtp: SmtpSink) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "MIGRATOR_",
                                                                     "MAX_", "SMTP_"))}
    sandbox_port, web_port, http_port = _free_port(), _free_port(), _free_port()
    metrics_dir = d / "metrics"
    metrics_dir.mkdir()

    # The Max sandbox as its own process; it trusts the test CA and nothing else.
    sandbox_env = {**base, "MAX_BOT_TOKEN": TOKEN, "MAX_BOT_USERNAME": "region_migrator_bot",
                   "DATABASE_URL": f"sqlite:///{d / 'sandbox-cli.db'}",
                   "SSL_CERT_FILE": str(certs["ca"])}
    sandbox_proc = stack.start("sandbox", [str(ROOT / ".venv" / "bin" / "flask"), "--app", "app",
                                           "sandbox", "--port", str(sandbox_port)], sandbox_env)
    sandbox = SandboxControl(f"http://127.0.0.1:{sandbox_port}")
    _wait("the sandbox", lambda: _listening(sandbox_port), procs=[sandbox_proc])

    env = {**base, "MIGRATOR_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
           "DATABASE_URL": url, "MAX_API_URL": f"http://127.0.0.1:{sandbox_port}",
           "MAX_BOT_TOKEN": TOKEN, "MAX_BOT_USERNAME": "region_migrator_bot",
           "MAX_WEBHOOK_SECRET": SECRET, "MIGRATOR_BASE_URL": "https://localhost",
           "MIGRATOR_TRUSTED_PROXIES": "1", "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port),
           "MAIL_FROM": "Migrator <migrator@region.example>", "LOG_FORMAT": "json",
           "GUNICORN_BIND": f"127.0.0.1:{web_port}", "GUNICORN_WORKERS": "2",
           "RUNNER_INTERVAL_SECONDS": "1"}

    # An operator's first steps: schema, an administrator, the inventory.
    flask(env, "db", "upgrade")
    flask(env, "users", "create", ADMIN, "--role", "admin", "--password-stdin",
          stdin=PASSWORD + "\n")
    token = flask(env, "users", "token", ADMIN).strip().splitlines()[-1]
    inventory = [
        ("organisations", ["code,name,parent_code,head_email",
                           "SCH1,Школа №1,,director@school1.example"]),
        ("employees", ["email,full_name,org_code,position,phone",
                       "t0@school1.example,Учителев Пётр Иванович,SCH1,Учитель,",
                       "t1@school1.example,Завучева Анна Петровна,SCH1,Завуч,"]),
        ("groups", ["key,name,platform,org_code,owner_email",
                    "sch1-teachers,Учителя школы №1,whatsapp,SCH1,t0@school1.example"]),
        ("members", ["group_key,email", "sch1-teachers,t0@school1.example",
                     "sch1-teachers,t1@school1.example"]),
    ]
    for kind, rows in inventory:
        flask(env, "import", kind, write_csv(d, kind, rows))

    # gunicorn as the web unit starts it, then nginx with the shipped site.
    web_env = {**env, **unit_environment("migrator-web.service"),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    (cwd,) = unit_settings("migrator-web.service")["WorkingDirectory"]
    web = stack.start("gunicorn", exec_start("migrator-web.service"), web_env, Path(cwd))
    def web_healthy() -> bool:  # the workers import the app first: slow on a busy machine
        try:
            return httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=60).is_success
        except httpx.HTTPError:
            return False

    _wait("gunicorn's workers", web_healthy, procs=[web])
    conf = nginx_conf(d, certs, web_port, http_port)
    check = subprocess.run([nginx, "-t", "-p", str(d), "-c", str(conf)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr
    proxy = stack.start("nginx", [nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"],
                        base)
    _wait("nginx on 443", lambda: _listening(443), procs=[proxy])

    tls = ssl.create_default_context(cafile=str(certs["ca"]))
    http = httpx.Client(base_url="https://localhost", verify=tls, timeout=90)
    api = {"Authorization": f"Bearer {token}"}

    assert http.get("/healthz").json() == {"status": "ok"}
    plain = httpx.get(f"http://127.0.0.1:{http_port}/login", headers={"Host": "localhost"})
    assert plain.status_code == 301 and plain.headers["location"] == "https://localhost/login"
    css = http.get("/static/app.css")
    assert css.status_code == 200 and "public" in css.headers["cache-control"]
    assert "expires" in css.headers and "x-request-id" not in css.headers  # nginx, not the app

    # Sign in through nginx with the real form (CSRF token, secure session cookie).
    form = http.get("/login")
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
    signed = http.post("/login", data={"csrf_token": csrf, "email": ADMIN,
                                       "password": PASSWORD},
                       headers={"Referer": "https://localhost/login"})
    assert signed.status_code == 302, signed.text[:500]
    assert "secure" in signed.headers["set-cookie"].lower()
    assert ADMIN in http.get("/").text

    # Max delivers to our HTTPS address; without a scheduler /readyz names it.
    assert "Subscribed" in flask(env, "max", "subscribe")
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["failing"] == ["scheduler"], ready.text
    scheduler = stack.start("scheduler", exec_start("migrator-scheduler.service"),
                            {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    _wait("/readyz to answer 200", lambda: http.get("/readyz").status_code == 200,
          procs=[scheduler, web, proxy])
    status_page = http.get("/admin/status")
    assert status_page.status_code == 200 and "Система готова" in status_page.text
    worker = stack.start("run-due", exec_start("migrator-run-due@.service"),
                         {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})

    # A coordinator makes the chat in Max and adds the bot: bot_added comes through nginx.
    owner = sandbox.create_user("Директор")["user_id"]
    chat_id = sandbox.create_chat("Учителя школы №1 (Max)", owner)["chat_id"]
    sandbox.add_bot(chat_id, PERMS, by_user_id=owner)

    def discovered():
        chats = http.get("/api/v1/chats", params={"status": "discovered"}, headers=api).json()
        found = [c for c in chats["chats"] if c["chat_id"] == chat_id]
        return found and found[0]["checked_at"] and not found[0]["missing_permissions"]

    _wait("the chat to be discovered and checked", discovered, procs=[scheduler, web, proxy])
    deliveries = sandbox.delivery_log()["deliveries"]
    assert any(x["update_type"] == "bot_added" and x["status"] == 200
               and x["url"] == "https://localhost/max/webhook" for x in deliveries), deliveries

    linked = http.post("/api/v1/groups/sch1-teachers/link", json={"chat_id": chat_id},
                       headers=api)
    assert linked.status_code in (200, 201), linked.text
    start = datetime.now(UTC) - timedelta(hours=1)
    wave = http.post("/api/v1/waves", headers=api, json={
        "name": "Школа №1", "group_keys": ["sch1-teachers"], "invite_at": iso(start),
        "add_members_at": iso(start + timedelta(minutes=5)),
        "announce_at": iso(start + timedelta(minutes=10)),
        "cutover_at": iso(start + timedelta(minutes=15)),
        "deadline": iso(start + timedelta(days=2))})
    assert wave.status_code == 201, wave.text

    # Invitations by e-mail; each person presses Start in Max (bot_started through nginx).
    mails = smtp.wait_for(2, timeout=WAIT)
    for msg in mails:
        uid = sandbox.create_user(str(msg["To"]).split("@")[0])["user_id"]
        sandbox.start(uid, token_from_text(msg.get_body(("plain",)).get_content()))

    def group():
        return http.get("/api/v1/groups/sch1-teachers", headers=api).json()

    def steps():
        return {s["kind"]: s["status"] for s in group()["steps"]}

    _wait("everyone in the Max chat", lambda: group()["coverage"]["percent"] == 100.0,
          procs=[scheduler, worker, web, proxy])
    _wait("the announcement", lambda: steps()["announce"] in ("waiting", "succeeded"))
    confirmed = http.post("/api/v1/groups/sch1-teachers/steps/announce/confirm", headers=api,
                          json={"note": "Объявление в WhatsApp размещено"})
    assert confirmed.status_code == 200, confirmed.text
    _wait("the cutover to wait for its confirmation", lambda: steps()["cutover"] == "waiting")
    confirmed = http.post("/api/v1/groups/sch1-teachers/steps/cutover/confirm", headers=api,
                          json={"note": "Группа WhatsApp закрыта"})
    assert confirmed.status_code == 200, confirmed.text
    _wait("the wave's end", lambda: steps()["cutover"] == "succeeded")
    report = _wait("the report to the head", lambda: [
        m for m in smtp.messages if str(m["To"]) == "director@school1.example"])
    assert len(report) == 1

    # Every process counted into the shared Prometheus directory; nginx lets localhost scrape.
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    fams = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    webhook = {s.labels["update_type"]: s.value for s in fams["migrator_webhook_updates"].samples
               if s.name.endswith("_total")}
    assert webhook.get("bot_added", 0) >= 1 and webhook.get("bot_started", 0) >= 2
    assert sum(s.value for s in fams["migrator_max_requests"].samples
               if s.name.endswith("_total")) > 0
    steps_by = {(s.labels["kind"], s.labels["status"]): s.value
                for s in fams["migrator_steps"].samples}
    assert steps_by[("cutover", "succeeded")] == 1
    assert flask(env, "audit", "verify").startswith("Audit chain OK")
    assert all(p.poll() is None for p in (web, scheduler, worker, proxy, sandbox_proc))

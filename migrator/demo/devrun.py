"""``make run``: the whole product on one machine, with the Max sandbox and a mail catcher.

Starts the web app (gunicorn), the Max Bot API sandbox, a local SMTP catcher (messages
land in ``instance/mailbox``), the scheduler and the demo actors who play employees
pressing Start; subscribes the webhook; prints the URL and the demo login. Ctrl+C stops all.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from migrator.config import environment, load_config

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def demo_env(web_port: int, sandbox_port: int, smtp_port: int) -> dict[str, str]:
    """The environment of every child process: the caller's, with the demo's defaults."""
    env = environment()
    secret_file = ROOT / "instance" / "demo-secrets"
    if not secret_file.exists():
        secret_file.write_text(f"{secrets.token_urlsafe(32)}\n{secrets.token_urlsafe(24)}\n")
        secret_file.chmod(0o600)
    secret_key, webhook_secret = secret_file.read_text().split()
    env.setdefault("SECRET_KEY", secret_key)
    env.setdefault("MAX_WEBHOOK_SECRET", webhook_secret)
    env.setdefault("MAX_API_URL", f"http://127.0.0.1:{sandbox_port}")
    env.setdefault("MAX_BOT_TOKEN", "sandbox-token")
    env.setdefault("MAX_BOT_USERNAME", "migrator_demo_bot")
    env.setdefault("MIGRATOR_BASE_URL", f"http://127.0.0.1:{web_port}")
    env.setdefault("SMTP_HOST", "127.0.0.1")
    env.setdefault("SMTP_PORT", str(smtp_port))
    env.setdefault("MAIL_FROM", "migrator@gov.example")
    env.setdefault("RUNNER_INTERVAL_SECONDS", "2")
    env.setdefault("RUNNER_RECHECK_SECONDS", "10")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def flask(*args: str) -> list[str]:
    return [str(VENV_BIN / "flask"), "--app", "app", *args]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {timeout:.0f} s")


def main() -> int:
    settings = load_config(str(ROOT / "instance"))
    web_port, sandbox_port, smtp_port = (
        settings["MIGRATOR_PORT"], settings["SANDBOX_PORT"], settings["DEMO_SMTP_PORT"])
    env = demo_env(web_port, sandbox_port, smtp_port)
    for sub in ("tmp", "new", "cur"):  # a Maildir: aiosmtpd's Mailbox handler needs all three
        (ROOT / "instance" / "mailbox" / sub).mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(name: str, cmd: list[str]) -> None:
        log = open(ROOT / "instance" / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child)
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log))

    def stop_all(*_a) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(0)))
    try:
        start("smtp", [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                       "-c", "aiosmtpd.handlers.Mailbox", str(ROOT / "instance" / "mailbox")])
        start("sandbox", flask("sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port),
                                 "--dev-webhooks"))
        start("web", [str(VENV_BIN / "gunicorn"), "--workers", "2", "--threads", "4",
                      "--bind", f"127.0.0.1:{web_port}", "--access-logfile", "-", "app:app"])
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/")
        wait_http(f"http://127.0.0.1:{web_port}/login")
        # The sandbox forgets everything at exit: give it the people and chats the DB knows
        # before the webhook is on (no bot_added deliveries for chats the app already has),
        # then add two new chats once it is on (the app discovers them).
        if subprocess.run(flask("demo", "stage-sandbox"), cwd=ROOT, env=env).returncode:
            raise SystemExit("Could not stage the Max sandbox; see the error above.")
        subprocess.run(flask("max", "subscribe"), cwd=ROOT, env=env, check=False)
        subprocess.run(flask("demo", "stage-sandbox", "--new-chats"), cwd=ROOT, env=env,
                       check=False)
        with open(ROOT / "instance" / "scheduler.log", "ab") as log:  # reminders go out now
            subprocess.run(flask("demo", "remind"), cwd=ROOT, env=env, stdout=log, stderr=log)
        start("scheduler", flask("scheduler"))
        # A trickle, not a burst: each invited person presses Start after ~1.5 min on average.
        start("actors", flask("demo-actors", "--sandbox-url", env["MAX_API_URL"],
                              "--interval", "5", "--share", "0.05"))
        print(
            f"\n  Migrator is running:  http://127.0.0.1:{web_port}\n"
            "  Demo login:           admin@example.org / demo-admin-2026\n"
            "  Coordinator:          coordinator@example.org / demo-coord-2026\n"
            f"  Max sandbox:          http://127.0.0.1:{sandbox_port}/_sandbox/\n"
            "  E-mails sent:         instance/mailbox/   Logs: instance/*.log\n"
            "  Stop with Ctrl+C.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        dead = [p.args for p in procs if p.poll() is not None]
        print(f"A process stopped: {dead}; see instance/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

"""The e-mail outbox: queue messages in the caller's transaction, send them over SMTP later.

Delivery is at-least-once at the SMTP boundary: a row is claimed (``sending``) and that
claim committed before SMTP is spoken; it is marked ``sent`` in its own commit right after
the server accepted it. If the process dies in between, the row's lease
(``MAIL_LEASE_SECONDS``) runs out and the next sender sends it again with the SAME
``Message-ID`` header (fixed when the row was queued), so a receiving system can drop the
duplicate. The window is the one message that was in flight.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session, utcnow
from migrator.mail.models import OutboxMessage
from migrator.mail.outbox import Failure, SendStats, claim_due, send_claimed

log = logging.getLogger("migrator.mail")

MAILER = Actor("job", "mailer", "mailer")
CLAIM_BATCH = 20  # messages claimed at a time (each claim has its own short lease)
KINDS = ("invite", "reminder", "schedule", "escalation", "report", "digest")


# --- queueing -------------------------------------------------------------------------


def mail_domain(mail_from: str) -> str:
    """The domain of ``MAIL_FROM`` (for Message-IDs); ``localhost`` when it has none."""
    addr = parseaddr(mail_from)[1]
    return addr.rpartition("@")[2] or "localhost"


def _clean_header(value: str) -> str:
    return " ".join(value.split())  # no CR/LF: no header injection


def valid_address(addr: str | None) -> bool:
    """A single plain address that can go in a To header (no name, list or line break)."""
    addr = (addr or "").strip()
    local, at, domain = addr.rpartition("@")
    return bool(local and at and "." in domain) and not any(
        c in addr for c in "\r\n,;<>\"() \t")


def _existing(session, idem_key: str) -> OutboxMessage | None:
    return session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idem_key == idem_key))


def queue_email_ex(
    idem_key: str, to: str, subject: str, text: str, html: str | None = None, *,
    kind: str, org_id: int | None = None, now: datetime | None = None,
) -> tuple[OutboxMessage, bool]:
    """:func:`queue_email`, also telling whether the row was created now."""
    now = now or utcnow()
    session = get_session()
    found = _existing(session, idem_key)
    if found is not None:
        return found, False
    to = to.strip()
    if not valid_address(to):
        raise ValueError(f"not a single e-mail address: {to!r}")
    msg = OutboxMessage(
        idem_key=idem_key, kind=kind, to_addr=to, subject=_clean_header(subject)[:500],
        body_text=text, body_html=html, org_id=org_id, status="pending",
        message_id=make_msgid(domain=mail_domain(current_app.config["MAIL_FROM"])),
        created_at=now, next_attempt_at=now,
    )
    try:
        with session.begin_nested():  # a concurrent writer of the same key wins cleanly
            session.add(msg)
            session.flush()
    except IntegrityError:
        found = _existing(session, idem_key)
        if found is None:
            raise
        return found, False
    return msg, True


def queue_email(
    idem_key: str, to: str, subject: str, text: str, html: str | None = None, *,
    kind: str, org_id: int | None = None, now: datetime | None = None,
) -> OutboxMessage:
    """Add an e-mail to the outbox in the caller's transaction (not committed).

    The same ``idem_key`` never makes a second message: the existing row is returned
    unchanged. The ``Message-ID`` is fixed now, so every (re)send carries the same one.
    ``now`` (default: the current time) is when it was queued and first becomes due.
    """
    return queue_email_ex(idem_key, to, subject, text, html, kind=kind, org_id=org_id,
                          now=now)[0]


# --- sending --------------------------------------------------------------------------


def build_message(row: OutboxMessage, mail_from: str) -> Message:
    """The MIME message for an outbox row: plain text, plus an HTML alternative if any.

    Built with the classic ``email.mime`` API: its RFC 2047 header encoding keeps the
    spaces of long Cyrillic subjects (the modern folder of Python 3.11 drops one at each
    encoded-word boundary).
    """
    plain = MIMEText(row.body_text, "plain", "utf-8")
    if row.body_html:
        msg: Message = MIMEMultipart("alternative")
        msg.attach(plain)
        msg.attach(MIMEText(row.body_html, "html", "utf-8"))
    else:
        msg = plain
    msg["From"] = formataddr(parseaddr(mail_from), charset="utf-8")
    msg["To"] = row.to_addr
    msg["Subject"] = Header(row.subject, "utf-8")
    msg["Message-ID"] = row.message_id
    msg["Date"] = formatdate(usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"
    return msg


class _ConnectError(Exception):
    """The SMTP server could not be reached or refused the session (login, STARTTLS)."""


class SmtpConnection:
    """One SMTP session for a batch, opened lazily and reopened after a disconnect."""

    def __init__(self, config) -> None:
        self.host = config["SMTP_HOST"]
        self.port = int(config["SMTP_PORT"])
        self.user = config.get("SMTP_USER") or ""
        self._password = config.get("SMTP_PASSWORD") or ""
        self.starttls = bool(config.get("SMTP_STARTTLS"))
        self.timeout = config.get("SMTP_TIMEOUT", 30)
        self.conn: smtplib.SMTP | None = None

    def redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.port == 465:  # implicit TLS ("SMTPS")
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                conn.ehlo()
                if self.starttls:
                    conn.starttls(context=ssl.create_default_context())
                    conn.ehlo()
                if self.user:
                    conn.login(self.user, self._password)
            except BaseException:
                conn.close()
                raise
        except (OSError, smtplib.SMTPException) as exc:
            raise _ConnectError(self.redact(f"{type(exc).__name__}: {exc}")) from exc
        return conn

    def send(self, msg: Message) -> None:
        """Send over the open session; one reconnect if the server dropped it."""
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.send_message(msg)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self.close()
            self.conn = self._connect()
            self.conn.send_message(msg)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                self.conn.close()
            self.conn = None


def check_smtp(config, timeout: float = 5.0) -> str | None:
    """Open and close one session as the sender would (EHLO, STARTTLS, login); the error
    text (password redacted) or None when the server took the session."""
    conn = SmtpConnection({**config, "SMTP_TIMEOUT": timeout})
    try:
        conn.conn = conn._connect()
    except _ConnectError as exc:
        return str(exc)
    conn.close()
    return None


def _is_permanent(exc: Exception) -> bool:
    """Only a refusal of every recipient with a 5xx code is final (a bad address)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return False


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {err}"
    return f"{type(exc).__name__}: {exc}"


def _summary(row: OutboxMessage, **extra) -> dict:
    return {"to": row.to_addr, "kind": row.kind, "idem_key": row.idem_key,
            "message_id": row.message_id, **extra}


def send_due(limit: int = 200, now: datetime | None = None,
             deadline: float | None = None) -> SendStats:
    """Send up to ``limit`` due e-mails; commits claims and outcomes in the context session.

    ``deadline`` (a ``time.monotonic()``): no new message is started after it; the claimed
    rest goes back to the outbox, due at once. Messages are claimed a few at a time with a
    short lease, so a sender killed mid-run
    holds back at most :data:`CLAIM_BATCH` messages for at most one lease; of those only the
    one in flight may go out twice, with the same Message-ID.

    Call it with no unfinished work in the app context's session (the scheduler gives it an
    app context of its own). The SMTP password is never logged or stored in ``last_error``.
    """
    cfg = current_app.config
    session = get_session()
    lease = int(cfg["MAIL_LEASE_SECONDS"])
    stats = SendStats()
    with acting_as(MAILER):
        smtp = SmtpConnection(cfg)
        try:
            while stats.claimed < limit and (deadline is None or time.monotonic() < deadline):
                at = now or utcnow()
                claim = claim_due(session, OutboxMessage, now=at, lease_seconds=lease,
                                  limit=min(CLAIM_BATCH, limit - stats.claimed))
                stats.claimed += len(claim.rows)
                stats.resent += claim.reclaimed
                if not claim.rows or not send_claimed(
                        session, OutboxMessage, claim, _sender(cfg, smtp), stats=stats,
                        now=at, lease_seconds=lease, max_attempts=int(cfg["MAIL_MAX_ATTEMPTS"]),
                        retry_base=int(cfg["MAIL_RETRY_SECONDS"]), on_sent=_sent,
                        on_failed=_failed, deadline=deadline):
                    break
        finally:
            smtp.close()
    return stats


def _sender(cfg, smtp: SmtpConnection):
    """``send(row)`` for :func:`send_claimed`: build the message and hand it to the server."""

    def send(row: OutboxMessage) -> Failure | None:
        try:
            message = build_message(row, cfg["MAIL_FROM"])
        except (ValueError, TypeError, LookupError) as exc:  # a row no retry fixes
            return Failure(f"cannot build the message: {exc}", permanent=True)
        try:
            smtp.send(message)
        except _ConnectError as exc:
            return Failure(str(exc), down=True)
        except (OSError, smtplib.SMTPException) as exc:
            if not isinstance(exc, smtplib.SMTPResponseException):
                smtp.close()
            return Failure(smtp.redact(_describe(exc)), permanent=_is_permanent(exc))
        log.info("mail %s sent (%s)", row.idem_key, row.message_id)
        return None

    return send


def _sent(row: OutboxMessage) -> None:
    record("mail.sent", object_type="outbox_message", object_id=row.id, org_id=row.org_id,
           summary=_summary(row))


def _failed(row: OutboxMessage, error: str) -> None:
    record("mail.failed", object_type="outbox_message", object_id=row.id, org_id=row.org_id,
           summary=_summary(row, attempts=row.attempts, error=error[:300]))

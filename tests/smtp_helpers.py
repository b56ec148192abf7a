"""A real SMTP server for tests: aiosmtpd on a free local port, keeping messages in memory.

    sink = SmtpSink().start()          # or SmtpSink(port=...) to reuse a port
    ... app_config["SMTP_PORT"] = sink.port ...
    sink.wait_for(2, timeout=5)
    sink.messages[0]["Message-ID"], sink.messages[0].get_body(("plain",)).get_content()
    sink.stop()

``fail_next`` answers the next N messages with a temporary failure (451) after DATA,
``drop_next`` with 421 (closing the session); ``refuse_rate`` (0..1) answers that share
of messages 451 at random (a seeded RNG: ``SmtpSink(seed=...)``), for a flaky relay;
``reject`` is a set of addresses refused permanently (550) at RCPT.
"""

from __future__ import annotations

import email
import random
import socket
import threading
import time
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.sink.reject:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink.lock:
            self.sink.peers.append(session.peer)
            if self.sink.fail_next > 0:
                self.sink.fail_next -= 1
                return "451 4.3.0 Temporary failure, try again later"
            if self.sink.drop_next > 0:
                self.sink.drop_next -= 1
                return "421 4.3.2 Service shutting down, closing channel"
            if self.sink.refuse_rate and self.sink.rng.random() < self.sink.refuse_rate:
                self.sink.refused += 1
                return "451 4.7.1 Greylisted, try again later"
            msg = email.message_from_bytes(envelope.content, policy=policy.default)
            self.sink.messages.append(msg)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


class SmtpSink:
    """An SMTP server collecting parsed messages (``email.message.EmailMessage``)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 auth: tuple[str, str] | None = None, seed: int = 0) -> None:
        self.host = host
        self.auth = auth  # (user, password): AUTH PLAIN/LOGIN offered (without TLS)
        self.logins: list[str] = []  # user names of successful logins
        self.port = port or _free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: list[tuple[str, int]] = []  # client address of every DATA (accepted or not)
        self.fail_next = 0
        self.drop_next = 0  # answer 421 (the client must close and reconnect)
        self.reject: set[str] = set()
        self.refuse_rate = 0.0
        self.refused = 0  # messages refused through ``refuse_rate``
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        kwargs = {}
        if self.auth:
            kwargs = {"authenticator": self._authenticate,
                      "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                      ready_timeout=5, **kwargs)
        self._controller.start()
        return self

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and (auth_data.login, auth_data.password)
              == (self.auth[0].encode(), self.auth[1].encode()))
        if ok:
            self.logins.append(self.auth[0])
        return AuthResult(success=ok)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def wait_for(self, n: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Wait until at least ``n`` messages arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} messages, got {len(self.messages)}")
            time.sleep(0.01)
        return self.messages

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""Running the sandbox (or any WSGI app) on a local port in a background thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class ServerHandle:
    """A running threaded werkzeug server; ``url`` has no trailing slash."""

    server: BaseWSGIServer
    thread: threading.Thread
    app: Flask

    @property
    def url(self) -> str:
        host = self.server.host
        return f"http://{host}:{self.server.port}"

    @property
    def port(self) -> int:
        return self.server.port

    def shutdown(self) -> None:
        """Stop serving, join the thread and stop the sandbox's webhook deliverer."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        state = self.app.extensions.get("max_sandbox")
        if state is not None and state.delivery is not None:
            state.delivery.close()


def run_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve ``app`` (threaded) on ``host:port`` (0: a free port) from a daemon thread."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="max-sandbox", daemon=True)
    thread.start()
    return ServerHandle(server=server, thread=thread, app=app)

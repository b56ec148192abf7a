"""``flask --app app sandbox``: run the Max Bot API sandbox as its own process."""

from __future__ import annotations

import logging
import os

import click
from werkzeug.serving import make_server

from migrator.sandbox.app import create_sandbox_app


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--rps", default=30, show_default=True, type=int, help="Requests per second (0: no limit)."
)
def sandbox_command(host: str, port: int, rps: int) -> None:
    """Run the Max Bot API sandbox (token from MAX_BOT_TOKEN, default "sandbox-token")."""
    token = os.environ.get("MAX_BOT_TOKEN") or "sandbox-token"
    username = os.environ.get("MAX_BOT_USERNAME") or "migrator_bot"
    app = create_sandbox_app(token=token, bot_username=username, rps=rps or None)
    logging.basicConfig(level=logging.INFO)
    server = make_server(host, port, app, threaded=True)
    click.echo(
        f"Max sandbox for @{username} on http://{host}:{server.port} "
        f"(control surface: http://{host}:{server.port}/_sandbox/); "
        f"set MAX_API_URL=http://{host}:{server.port}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["max_sandbox"].delivery.close()

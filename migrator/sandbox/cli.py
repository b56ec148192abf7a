"""``flask --app app sandbox``: run the Max Bot API sandbox as its own process."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import make_server

from migrator.sandbox.app import create_sandbox_app


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=None, type=int, help="Port to listen on (default: SANDBOX_PORT).")
@click.option(
    "--rps", default=30, show_default=True, type=int, help="Requests per second (0: no limit)."
)
@click.option(
    "--dev-webhooks",
    is_flag=True,
    help="Development only: also accept http:// webhook URLs on a loopback host (Max "
    "accepts https:// on port 443 only).",
)
@with_appcontext
def sandbox_command(host: str, port: int | None, rps: int, dev_webhooks: bool) -> None:
    """Run the Max Bot API sandbox (token from MAX_BOT_TOKEN, default "sandbox-token")."""
    token = current_app.config["MAX_BOT_TOKEN"] or "sandbox-token"
    username = current_app.config["MAX_BOT_USERNAME"]
    app = create_sandbox_app(token=token, bot_username=username, rps=rps or None,
                             dev_webhooks=dev_webhooks)
    logging.basicConfig(level=logging.INFO)
    server = make_server(host, port or current_app.config["SANDBOX_PORT"], app, threaded=True)
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

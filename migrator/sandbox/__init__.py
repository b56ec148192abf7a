"""A local Max Bot API server for demos and tests.

``create_sandbox_app(token=..., bot_username="migrator_bot", rps=30, state=None)`` builds a
Flask app that answers the Max Bot API methods the Migrator client uses, with the status
codes, JSON shapes and ``{"code", "message"}`` error bodies of the official schema (0.0.32):

    GET /me · GET, PATCH /chats/{chatId} · GET, POST, DELETE /chats/{chatId}/members ·
    GET /chats/{chatId}/members/me · GET /chats/{chatId}/members/admins ·
    GET, PUT, DELETE /chats/{chatId}/pin · GET, POST /messages ·
    GET, POST, DELETE /subscriptions · GET /updates

Rules it enforces: the ``Authorization`` header (or ``access_token`` query) must be the
token (401); unknown chats 404; the bot must be in the chat (403), an admin holding
``add_remove_members`` to add or remove members and ``pin_message`` to pin or unpin (posting
needs membership only: ``write`` is editing and deleting), and a user must have pressed
Start (and not stopped the bot) before the bot may write to them; bad bodies 400 (more than
100 ``user_ids``, repeated ``user_ids`` - the schema's ``uniqueItems`` -, text over 4000
characters...); at most ``rps`` requests per sliding second per token, else 429 with
``Retry-After``. ``GET /updates`` without ``marker`` returns only the last update, as the
schema says (the earlier ones are lost). Webhook URLs must be ``https://`` on port 443; a
subscription whose deliveries all failed for 8 hours is removed. Every API request is
logged (arrival time, method, path, status) for measurement.

Deliberate differences from the platform, for local use:

* with the development flag (``create_sandbox_app(dev_webhooks=True)``, ``flask sandbox
  --dev-webhooks``) webhook URLs may also be ``http://`` or use any port on a loopback host
  (127.0.0.1, ::1, localhost);
* retries of failed deliveries start at 0.5 s (×2.5, capped at 30 s) and each update is
  given up after 5 minutes; ``POST /_sandbox/webhooks`` compresses these times and the 8
  hours after which a failing subscription is removed;
* ``Recipient.chat_type`` is ``"chat"`` even for dialogs, because the schema's ``ChatType``
  enum has no other value; a dialog's ``chat_id`` is ``10_000_000_000 + user_id``.

Control surface (JSON, no auth, not rate limited, not in the request log):

    GET    /_sandbox/                      HTML index of chats and users
    POST   /_sandbox/reset                 {"seed": 0} - forget everything, faults too
    GET    /_sandbox/users                 users
    POST   /_sandbox/users                 {"first_name", "last_name"?, "username"?,
                                            "user_id"?, "allow_add"?: true} -> 201 user
    GET    /_sandbox/users/{id}            one user (with allow_add, bot_started)
    PATCH  /_sandbox/users/{id}            {"allow_add": false, ...} privacy and names
    GET    /_sandbox/users/{id}/messages   the bot's messages in that user's dialog
    POST   /_sandbox/users/{id}/start      {"payload": "..."} -> bot_started
    POST   /_sandbox/users/{id}/stop       -> bot_stopped
    POST   /_sandbox/users/{id}/write      {"text"}: the user writes to the bot in their
                                            dialog -> message_created
    POST   /_sandbox/deeplink              {"user_id", "url": "https://max.ru/<bot>?start=<p>"}
                                           -> bot_started with that payload
    GET    /_sandbox/chats                 chats with members, messages, pinned message
    POST   /_sandbox/chats                 {"title", "owner_id", "chat_id"?, "member_ids"?,
                                            "link"?: "https://max.ru/join/..."}
    GET    /_sandbox/chats/{id}            one chat, same detail
    PATCH  /_sandbox/chats/{id}            {"link": "https://max.ru/join/..." | null}: the
                                            owner sets or removes the join link (no update)
    POST   /_sandbox/chats/{id}/bot        {"permissions"?: [read_all_messages,
                                            add_remove_members, pin_message, write],
                                            "is_admin"?: true, "by_user_id"?: owner}
                                            -> bot_added
    PATCH  /_sandbox/chats/{id}/bot        {"permissions": [...], "is_admin"?: true}: the
                                            bot promoted or demoted silently (no update,
                                            as on Max)
    DELETE /_sandbox/chats/{id}/bot        {"by_user_id"?} -> bot_removed
    POST   /_sandbox/chats/{id}/title      {"title", "by_user_id"?} -> chat_title_changed
    POST   /_sandbox/chats/{id}/members    {"user_id", "inviter_id"?} -> user_added
    DELETE /_sandbox/chats/{id}/members/{user_id}   {"admin_id"?} -> user_removed
    POST   /_sandbox/chats/{id}/messages   {"user_id", "text"} -> message_created
    GET    /_sandbox/requests?since=T      API request log [{at, method, path, query,
                                            status, fault}] (``at``: time.time() on arrival;
                                            an add call that reached the handler also
                                            has ``user_ids``, the ids it carried)
    DELETE /_sandbox/requests              clear it
    GET    /_sandbox/deliveries?since=T    webhook delivery log [{at, url, update_type,
                                            update_timestamp, attempt, duplicate, status,
                                            error}] and the number still pending
    GET    /_sandbox/updates               every update emitted so far
    GET    /_sandbox/webhooks              webhook timing, the development flag, and each
                                            subscription's failing_since
    POST   /_sandbox/webhooks              {"retry_base", "retry_factor", "retry_cap",
                                            "give_up_after", "unsubscribe_after"} seconds
                                            (any subset): compress webhook time
    GET    /_sandbox/faults                current fault settings
    POST   /_sandbox/faults                set faults (keys optional; a rule fires on the
                                            next N occasions, then with a probability
                                            drawn from the seeded RNG):
        {"seed": 1,
         "fail_503": {"next": 2, "probability": 0.0},
         "fail_429": {"next": 0, "probability": 0.1, "retry_after": 1.0},
         "slow": {"next": 0, "probability": 1.0, "ms": 300},
         "duplicate_delivery": {"next": 1},
         "reorder_delivery": {"next": 1, "hold_ms": 400},
         "not_found": {"probability": 1.0, "method": "GET", "path": "/messages"},
         "soft_fail": {"probability": 0.15, "method": "PUT",
                       "path": "/chats/{chatId}/pin"},
         "drop_answer": {"next": 1, "method": "POST", "path": "/chats/{chatId}/members"}}
                                           (``not_found``: 404 for the requests matching
                                           method and path - a method the platform
                                           lacks; without them, for any request;
                                           ``soft_fail``: 200 ``{"success": false}`` and
                                           nothing done, for the calls answering a result
                                           body - add/remove members, pin/unpin,
                                           subscribe/unsubscribe - matched by method and
                                           path template; ``drop_answer``: the request is
                                           carried out, then the connection is closed
                                           before the answer - the caller cannot tell
                                           whether it happened)
    GET    /_sandbox/bot                   the bot's user_id and username

Run it with ``flask --app app sandbox`` (:mod:`migrator.sandbox.cli`) or, in tests,
``run_in_thread(app)`` (:mod:`migrator.sandbox.server`).
"""

from migrator.sandbox.app import create_sandbox_app
from migrator.sandbox.server import ServerHandle, run_in_thread

__all__ = ["ServerHandle", "create_sandbox_app", "run_in_thread"]

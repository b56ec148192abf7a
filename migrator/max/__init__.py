"""Max Bot API integration: the typed HTTP client, its errors and the shared rate limiters.

Import what you need from the submodules (``migrator.max.client``, ``migrator.max.errors``,
``migrator.max.ratelimit``); this package module deliberately imports nothing.
"""

"""The step kinds, one module each; the runner imports them (never the other way round).

Every executor is idempotent and commits as it goes: transactions are closed before every
Max API call (on SQLite a transaction holds the database write lock), and every intent is
committed before the call that carries it out.
"""

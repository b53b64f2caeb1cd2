"""The order service (OMS) stand-in: orders into PostgreSQL behind a circuit breaker, a
kill-switch kept in Redis, a simulation guard. Run with `python -m orderservice`.

Only `config`, `breaker` and `guard` are safe to import from the drill side: `app` imports
FastAPI, psycopg and redis-py.
"""

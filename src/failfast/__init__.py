"""Clients that fail fast and once: bounded PostgreSQL calls, redis-py without retries.

Shared by drill's drivers and the order service; imports nothing of either.
"""

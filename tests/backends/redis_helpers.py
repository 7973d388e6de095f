"""Shared helpers for the Redis backend tests: server availability and key clean-up."""

from __future__ import annotations

import functools
import os
import uuid

import pytest

REDIS_URL = os.environ.get("EVENTPATTERNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str = REDIS_URL) -> str | None:
    """Return ``None`` when Redis answers, else why not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install 'eventpatterns[redis]')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        return f"Redis is not reachable at {url}: {exc}"
    return None


@functools.cache
def _cached_reason(url: str) -> str | None:
    return redis_available(url)


def require_redis(url: str = REDIS_URL) -> None:
    """Skip without Redis, except in CI (``CI=true``), where a missing Redis fails."""
    reason = _cached_reason(url) if url == REDIS_URL else redis_available(url)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI requires Redis: {reason}")
    pytest.skip(reason)


def new_prefix(label: str = "t") -> str:
    """Return a key prefix no other test uses."""
    return f"eptest:{label}:{uuid.uuid4().hex[:12]}"


def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key of one bus (``{prefix}:*``); return how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()

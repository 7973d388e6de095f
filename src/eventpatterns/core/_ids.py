"""Time-sortable event ids (UUIDv7, RFC 9562 section 5.7)."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0

#: Random bytes read ahead from the OS, ten per id: one ``getrandom`` call per 400 ids
#: instead of one each (a system call costs more than the rest of an id). A forked child
#: starts with none, so that it never hands out its parent's.
_POOL_SIZE = 4000
_pool = b""
_taken = 0


def _forget_pool() -> None:
    global _pool, _taken
    _pool, _taken = b"", 0


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_pool)


def _entropy() -> int:
    """Return 80 random bits (call with ``_lock`` held)."""
    global _pool, _taken
    if _taken + 10 > len(_pool):
        _pool, _taken = os.urandom(_POOL_SIZE), 0
    start = _taken
    _taken = start + 10
    return int.from_bytes(_pool[start : start + 10], "big")


def new_id() -> str:
    """Return a new UUIDv7 as a string: unique, and sortable by creation time.

    Within one millisecond a 12-bit counter (RFC 9562 section 6.2, method 1) keeps
    ids from one process strictly increasing; the remaining 62 bits are random.

    Example:
        >>> len(new_id())
        36
    """
    global _last_ms, _counter
    with _lock:
        entropy = _entropy()
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            # Start low in the counter space so ids within a millisecond can count up.
            _counter = (entropy >> 64) & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand = entropy & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

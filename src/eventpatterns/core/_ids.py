"""Time-sortable event ids (UUIDv7, RFC 9562 section 5.7)."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 as a string: unique, and sortable by creation time.

    Within one millisecond a 12-bit counter (RFC 9562 section 6.2, method 1) keeps
    ids from one process strictly increasing; the remaining 62 bits are random.

    Example:
        >>> len(new_id())
        36
    """
    global _last_ms, _counter
    entropy = int.from_bytes(os.urandom(10), "big")
    with _lock:
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

"""Whether a host name or address is this machine's own (the open mode's and SSRF rules)."""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["is_loopback"]


@functools.lru_cache(maxsize=256)  # the same few hosts, asked for every endpoint
def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: ``localhost``, ``127.x`` or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""The Lua scripts, loaded from the package's ``lua/`` directory.

Each bus operation is one atomic script on the server (the receive transaction wraps a
plain ``XREADGROUP`` between two, see :mod:`._receive`). ``lua/helpers.lua`` holds the
functions they share; it is put in front of every script, so a helper exists once.
Each ``.lua`` file states its ``KEYS``, ``ARGV``, reply and error replies at the top;
every error reply is an ``EP...`` code that :data:`._connection.REPLIES` maps to an
eventpatterns error. The keys and fields they use are documented in
``docs/backends.md`` ("Data layout"), and :mod:`._keys` builds their names.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

__all__ = ["HELPERS", "NAMES", "TEXTS", "as_function", "sha1", "text_of"]

#: Script name (as the backend calls it) -> file in ``lua/``.
NAMES = (
    "APPEND",
    "READ",
    "LAST",
    "CREATE_GROUP",
    "RECEIVE",
    "TAKE_BEFORE",
    "TAKE_AFTER",
    "RECOVER",
    "ACK",
    "RELEASE",
    "DEAD_LETTER",
    "DEAD_LETTERS",
    "REDRIVE",
    "DISCARD_DEAD_LETTERS",
    "STATS",
)


def _load(name: str) -> str:
    return (files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


_HELPERS = _load("helpers")

#: Script name -> its full text: the helpers, then the script's own file.
TEXTS: dict[str, str] = {name: _HELPERS + _load(name.lower()) for name in NAMES}


def sha1(text: str) -> bytes:
    """Return the SHA1 digest that ``EVALSHA`` names a script by (hex, as bytes)."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest().encode()


#: ``lua/helpers.lua``, for scripts of other parts that embed a bus script.
HELPERS = _HELPERS


def as_function(text: str, function: str) -> str:
    """Return a script's text as a local Lua function ``function(KEYS, ARGV)``.

    The script's own ``KEYS`` and ``ARGV`` become the function's parameters and its
    ``return`` the function's, so another script can run it on a slice of its own
    keys and arguments (the job store's outbox runs ``append.lua`` this way).
    """
    return f"local function {function}(KEYS, ARGV)\n{text}\nend\n"


def text_of(name: str) -> str:
    """Return ``lua/<name>.lua`` without the helpers (put :data:`HELPERS` in front)."""
    return _load(name)

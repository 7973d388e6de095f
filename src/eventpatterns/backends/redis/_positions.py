"""Positions of a Redis bus: ``"<epoch>:<stream id>"``, such as ``"1a2b3c4d:1700000000000-0"``.

The epoch names one incarnation of the log: a random token in the meta hash (field
``epoch``), set by the first script that finds none (an append, a group's creation, a
read). Delete a bus's keys and the next one sets a new epoch, so positions of the old
log are recognised (``StalePosition``) instead of naming unrelated entries.

The scripts check positions against the server's epoch; :meth:`Positions.sort_key`,
which cannot ask the server, checks against the epoch this backend saw last.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from ...bus import Position
from ...errors import InvalidPosition, StalePosition

__all__ = ["Positions", "id_key", "new_epoch"]

_ID = r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})"
_POSITION = re.compile(rf"\A([0-9a-f]{{8}}):{_ID}\Z")
_EXPECTED = "a Redis bus position such as '1a2b3c4d:1700000000000-0'"


def new_epoch() -> str:
    """Return a fresh epoch token (8 lowercase hex digits), offered to the scripts."""
    return secrets.token_hex(4)


class Positions:
    """Parse and build positions, remembering the newest epoch the server reported."""

    __slots__ = ("epoch", "prefix")

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.prefix = ""  # "<epoch>:", what a stream id needs to become a position

    def seen(self, epoch: Any) -> str:
        """Note the epoch a script returned (bytes or str); return the position prefix."""
        text = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        if text != self.epoch:
            self.epoch, self.prefix = text, text + ":"
        return self.prefix

    def split(self, position: Position) -> tuple[str, str]:
        """Return ``(epoch, stream id)`` of a well-formed position.

        Raises:
            InvalidPosition: Not a position of a Redis bus.
        """
        match = _POSITION.match(position) if isinstance(position, str) else None
        if match is None:
            raise InvalidPosition(position, expected=_EXPECTED)
        return match[1], position[9:]

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Return ``(milliseconds, sequence)`` of a position of the current epoch.

        Raises:
            InvalidPosition: Not a position of a Redis bus.
            StalePosition: A position of another epoch than the one last seen.
        """
        match = _POSITION.match(position) if isinstance(position, str) else None
        if match is None:
            raise InvalidPosition(position, expected=_EXPECTED)
        if self.epoch is not None and match[1] != self.epoch:
            raise StalePosition(position, epoch=self.epoch)
        return (int(match[2]), int(match[3]))


def id_key(stream_id: bytes | str) -> tuple[int, int]:
    """Return the order of a raw stream id (``b"1700000000000-0"``)."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq))

"""A WHATWG-conforming event-stream parser for the tests (HTML §9.2.6), written from the spec.

It is deliberately independent of ``eventpatterns.realtime._sse``: the tests check
that what the encoder writes is what a browser's ``EventSource`` would dispatch.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


@dataclass
class Message:
    type: str
    data: str
    last_event_id: str


@dataclass
class Parser:
    """Feed bytes in any chunking; collect dispatched messages, comments and ``retry``."""

    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    _buffer: str = ""
    _started: bool = False
    _pending_cr: bool = False
    _data: str = ""
    _event: str = ""

    def feed(self, chunk: bytes) -> None:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")  # one leading BOM is skipped
        for char in text:
            if self._pending_cr:
                self._pending_cr = False
                if char == "\n":  # CRLF is one line end
                    continue
            if char in "\r\n":
                self._pending_cr = char == "\r"
                line, self._buffer = self._buffer, ""
                self._line(line)
            else:
                self._buffer += char

    def _line(self, line: str) -> None:
        if line == "":
            self._dispatch()
            return
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            self.retry = int(value)

    def _dispatch(self) -> None:
        if self._data == "":
            self._event = ""
            return
        data = self._data.removesuffix("\n")
        self.messages.append(Message(self._event or "message", data, self.last_event_id))
        self._data = ""
        self._event = ""

"""Run an ASGI app on uvicorn for the length of an ``async with`` (tests, demos, examples)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import anyio

from ..errors import MissingDependency

__all__ = ["Served", "served"]


class Served(NamedTuple):
    """Where a :func:`served` app listens.

    Attributes:
        host: The interface (``127.0.0.1`` by default).
        port: The TCP port (the one picked, with ``port=0``).
    """

    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self._netloc}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self._netloc}"

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@asynccontextmanager
async def served(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0
) -> AsyncIterator[Served]:
    """Serve ``app`` with uvicorn (WebSocket and HTTP) until the block ends.

    The socket is bound before uvicorn starts, so ``port=0`` picks a free port and the
    block sees it at once; on exit uvicorn stops (open connections are closed).

    Args:
        app: An ASGI app, e.g. :func:`create_app`'s.
        host: The interface to listen on.
        port: The TCP port; ``0`` picks a free one.
        startup_timeout: Seconds uvicorn may take to start.

    Yields:
        Where it listens (:class:`Served`: ``url``, ``ws_url``, ``port``).

    Raises:
        MissingDependency: uvicorn is not installed (extra ``server``).
        TimeoutError: uvicorn did not start in time.

    Example:
        ```python
        async with served(create_app(bus, gateway=gateway)) as where:
            print(where.url, where.ws_url + "/ws")
        ```
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependency(exc.name or "uvicorn", extra="server") from exc
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as sock:
        where = Served(host, int(sock.getsockname()[1]))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(startup_timeout):
                while not server.started:  # noqa: ASYNC110 - uvicorn has no readiness hook
                    await anyio.sleep(0.01)
            try:
                yield where
            finally:
                server.should_exit = True

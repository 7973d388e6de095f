"""The gateway's ASGI endpoints for Starlette, FastAPI or any ASGI app (extra ``server``).

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.realtime.asgi import routes

    app = Starlette(routes=routes(gateway))  # WebSocket at /ws, SSE at /events
    ```
"""

from ._asgi import ASGIApp, credentials_from, routes, sse_endpoint, websocket_endpoint

__all__ = ["ASGIApp", "credentials_from", "routes", "sse_endpoint", "websocket_endpoint"]

"""HTTP routes for browsers and apps to register their push devices (extra ``server``).

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.push.asgi import device_routes

    app = Starlette(routes=device_routes(registry, authorizer=authorizer))
    ```
"""

from ._asgi import KNOWN_PUSH_SERVICES, ASGIApp, device_endpoint, device_routes

__all__ = ["KNOWN_PUSH_SERVICES", "ASGIApp", "device_endpoint", "device_routes"]

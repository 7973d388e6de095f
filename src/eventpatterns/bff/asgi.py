"""The composed app and the BFF's aggregated views as Starlette routes (extra ``server``).

:func:`create_app` mounts every component given (gateway, job tracker, push devices,
views, CloudEvents ingest, dead letters, health, OpenAPI) in one app for one frontend.

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.bff.asgi import view_routes

    app = Starlette(routes=view_routes(aggregator, [summary], authorizer=authorizer))
    ```
"""

from ._app import create_app
from ._asgi import problem, view_routes

__all__ = ["create_app", "problem", "view_routes"]

"""The composed app and the BFF's aggregated views as Starlette routes (extra ``server``).

:func:`create_app` mounts every component given (gateway, job tracker, push devices,
views, CloudEvents ingest, dead letters, health, metrics, OpenAPI) in one app for one
frontend; :func:`served` runs an app on uvicorn for the length of an ``async with``.

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.bff.asgi import view_routes

    app = Starlette(routes=view_routes(aggregator, [summary], authorizer=authorizer))
    ```
"""

from ._app import create_app
from ._asgi import problem, view_routes
from ._served import Served, served

__all__ = ["Served", "create_app", "problem", "served", "view_routes"]

"""The jobs' HTTP routes for Starlette, FastAPI or any ASGI app (extra ``server``).

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.jobs.asgi import routes

    app = Starlette(routes=routes(tracker, authorizer=authorizer))
    ```
"""

from ._asgi import blob_routes, routes

__all__ = ["blob_routes", "routes"]

"""The BFF's aggregated views as Starlette routes (extra ``server``).

Example:
    ```python
    from starlette.applications import Starlette
    from eventpatterns.bff.asgi import view_routes

    app = Starlette(routes=view_routes(aggregator, [summary], authorizer=authorizer))
    ```
"""

from ._asgi import problem, view_routes

__all__ = ["problem", "view_routes"]

"""The ``/metrics`` endpoint: Prometheus text for eventpatterns' metrics (extra ``server``).

Example:
    ```python
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from eventpatterns.observability.asgi import metrics_app

    app = Starlette(routes=[Mount("/metrics", metrics_app())])
    ```
"""

from ._prometheus import REFRESH_TIMEOUT, ASGIApp, MetricsCollector, metrics_app

__all__ = ["REFRESH_TIMEOUT", "ASGIApp", "MetricsCollector", "metrics_app"]

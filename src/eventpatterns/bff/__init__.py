"""Backend for Frontend: profiles that shape events per client, aggregated views, webhooks.

``import eventpatterns.bff`` imports httpx only when an :class:`Aggregator` or a webhook
delivery is created without a client; the Starlette routes live in
:mod:`eventpatterns.bff.asgi` (extra ``server``).
"""

from ._projection import MAX_DEPTH, Localizer, Projection, parse_fields
from ._profile import Profile, Profiles, Shaped

__all__ = [
    "MAX_DEPTH",
    "Localizer",
    "Profile",
    "Profiles",
    "Projection",
    "Shaped",
    "parse_fields",
]

"""Backend for Frontend: profiles that shape events per client, aggregated views, webhooks.

``import eventpatterns`` does not import this package. It imports no Starlette: the
routes live in :mod:`eventpatterns.bff.asgi` (extra ``server``). Shaping events
(:class:`Profile`, :class:`Projection`) is plain synchronous code with no I/O; the gateway
calls :meth:`Profiles.encode` for each profile's frame text.
"""

from ..push._breaker import BreakerPolicy
from ._aggregate import Aggregator, Part, PartResult, Upstream, View, ViewResult
from ._profile import Profile, Profiles, Shaped
from ._projection import MAX_DEPTH, Localizer, Projection, parse_fields
from ._webhooks import WebhookDestination, deliver, new_secret, sign, verify

__all__ = [
    "MAX_DEPTH",
    "Aggregator",
    "BreakerPolicy",
    "Localizer",
    "Part",
    "PartResult",
    "Profile",
    "Profiles",
    "Projection",
    "Shaped",
    "Upstream",
    "View",
    "ViewResult",
    "WebhookDestination",
    "deliver",
    "new_secret",
    "parse_fields",
    "sign",
    "verify",
]

"""Real-time delivery to browsers and apps: gateway, transports, auth (issue 9).

``import eventpatterns.realtime`` imports no optional dependency: the JWT and OIDC
authorizers import pyjwt, cryptography and httpx when constructed.
"""

from ._auth import (
    Authorizer,
    Credentials,
    Principal,
    SubscriptionAuthorizer,
    SubscriptionRequest,
)

__all__ = [
    "Authorizer",
    "Credentials",
    "Principal",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
]

"""Real-time delivery to browsers and apps: gateway, transports, auth (issue 9).

``import eventpatterns.realtime`` imports no optional dependency: the JWT and OIDC
authorizers import pyjwt, cryptography and httpx when constructed.
"""

from ._apikeys import APIKeyAuthorizer, APIKeyRecord
from ._auth import (
    Authorizer,
    Credentials,
    Principal,
    SubscriptionAuthorizer,
    SubscriptionRequest,
    all_of,
    first_of,
    narrow,
    owner_only,
    require_scope,
)
from ._jwt import JWTAuthorizer, JWTKey
from ._oidc import OIDCAuthorizer

__all__ = [
    "APIKeyAuthorizer",
    "APIKeyRecord",
    "Authorizer",
    "Credentials",
    "JWTAuthorizer",
    "JWTKey",
    "OIDCAuthorizer",
    "Principal",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
    "all_of",
    "first_of",
    "narrow",
    "owner_only",
    "require_scope",
]

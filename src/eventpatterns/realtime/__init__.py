"""Real-time delivery to browsers and apps: gateway, transports, auth, presence (issue 9).

``import eventpatterns.realtime`` imports no optional dependency.
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
from ._presence import Presence, PresenceEvent
from ._presence_memory import MemoryPresence

__all__ = [
    "APIKeyAuthorizer",
    "APIKeyRecord",
    "Authorizer",
    "Credentials",
    "JWTAuthorizer",
    "JWTKey",
    "MemoryPresence",
    "OIDCAuthorizer",
    "Presence",
    "PresenceEvent",
    "Principal",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
    "all_of",
    "first_of",
    "narrow",
    "owner_only",
    "require_scope",
]

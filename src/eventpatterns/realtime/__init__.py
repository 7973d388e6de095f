"""Real-time delivery to browsers and apps: gateway, transports, auth, presence (issue 9).

``import eventpatterns.realtime`` imports no optional dependency: the JWT and OIDC
authorizers import pyjwt, cryptography and httpx when constructed, and the ASGI
endpoints (Starlette, extra ``server``) live in :mod:`eventpatterns.realtime.asgi`.
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
from ._connection import Connection
from ._frames import CloseCode, ErrorCode, parse_client_frame
from ._gateway import CONTROL_TYPE, EventShaper, Gateway, GatewayStats
from ._jwt import JWTAuthorizer, JWTKey
from ._limits import Limits
from ._oidc import OIDCAuthorizer
from ._presence import Presence, PresenceEvent
from ._presence_memory import MemoryPresence
from ._protocol import (
    AuthenticateRequested,
    ProtocolEvent,
    ServerProtocol,
    SubscribeRequested,
    UnsubscribeRequested,
)
from ._transport import MemoryTransport, Transport
from ._websockets import WebSocketServer, WebSocketTransport, serve

__all__ = [
    "APIKeyAuthorizer",
    "APIKeyRecord",
    "AuthenticateRequested",
    "Authorizer",
    "CONTROL_TYPE",
    "CloseCode",
    "Connection",
    "Credentials",
    "ErrorCode",
    "EventShaper",
    "Gateway",
    "GatewayStats",
    "JWTAuthorizer",
    "JWTKey",
    "Limits",
    "MemoryPresence",
    "MemoryTransport",
    "OIDCAuthorizer",
    "Presence",
    "PresenceEvent",
    "Principal",
    "ProtocolEvent",
    "ServerProtocol",
    "SubscribeRequested",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
    "Transport",
    "UnsubscribeRequested",
    "WebSocketServer",
    "WebSocketTransport",
    "all_of",
    "first_of",
    "narrow",
    "owner_only",
    "parse_client_frame",
    "require_scope",
    "serve",
]

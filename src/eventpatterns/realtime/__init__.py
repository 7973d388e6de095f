"""Real-time delivery to browsers and apps: gateway, transports, auth, presence (issue 9).

``import eventpatterns.realtime`` imports no optional dependency: the JWT and OIDC
authorizers import pyjwt, cryptography and httpx when constructed.
"""

from ._auth import (
    Authorizer,
    Credentials,
    Principal,
    SubscriptionAuthorizer,
    SubscriptionRequest,
    narrow,
)
from ._connection import Connection
from ._frames import CloseCode, ErrorCode, parse_client_frame
from ._gateway import CONTROL_TYPE, Gateway, GatewayStats
from ._limits import Limits
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

__all__ = [
    "CONTROL_TYPE",
    "AuthenticateRequested",
    "Authorizer",
    "CloseCode",
    "Connection",
    "Credentials",
    "ErrorCode",
    "Gateway",
    "GatewayStats",
    "Limits",
    "MemoryPresence",
    "MemoryTransport",
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
    "narrow",
    "parse_client_frame",
]

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
from ._frames import CloseCode, ErrorCode, parse_client_frame
from ._gateway import CONTROL_TYPE, Connection, Gateway, GatewayStats
from ._limits import Limits
from ._protocol import ServerProtocol
from ._transport import MemoryTransport, Transport

__all__ = [
    "CONTROL_TYPE",
    "Authorizer",
    "CloseCode",
    "Connection",
    "Credentials",
    "ErrorCode",
    "Gateway",
    "GatewayStats",
    "Limits",
    "MemoryTransport",
    "Principal",
    "ServerProtocol",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
    "Transport",
    "parse_client_frame",
]

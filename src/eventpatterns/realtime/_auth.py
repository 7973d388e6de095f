"""Who is connecting, and what they may subscribe to: the gateway's auth types.

An :data:`Authorizer` turns the :class:`Credentials` a connection presented into a
:class:`Principal` (or raises :class:`~eventpatterns.errors.AuthenticationFailed`).
A :data:`SubscriptionAuthorizer` sees each :class:`SubscriptionRequest` with the
principal and returns the request to index, possibly narrowed with :func:`narrow`
(or raises :class:`~eventpatterns.errors.Forbidden`).

This module imports nothing optional: the JWT, OIDC and API-key authorizers import
pyjwt, cryptography and httpx only when constructed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Authorizer",
    "Credentials",
    "Principal",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a connection presented to authenticate.

    Attributes:
        token: A bearer token: from the ``authenticate`` frame, an
            ``Authorization: Bearer`` header, or the ``?token=`` query parameter.
        api_key: The ``X-Api-Key`` header.
        headers: The request headers, names lower-cased.
        query: The query parameters.
    """

    token: str | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client.

    Attributes:
        id: A stable identifier (a JWT's ``sub``, an API key's owner).
        claims: What the authorizer knows about it (a token's claims).
        scopes: Permissions granted (a token's ``scope``/``scp``, an API key's scopes).
        expires_at: When the credentials stop being valid, in Unix seconds, or ``None``.
    """

    id: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None


Authorizer = Callable[[Credentials], Awaitable[Principal]]
"""Authenticate a connection: credentials in, principal out.

Raises :class:`~eventpatterns.errors.AuthenticationFailed` (with a ``reason``) when the
credentials are missing, malformed, expired or not accepted; the gateway closes the
connection with code 4401. Any other exception is a bug in the authorizer.
"""


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """A client's ``subscribe`` frame, as the authorization hook sees it.

    Attributes:
        id: The subscription id chosen by the client.
        pattern: An EventBridge event pattern, if the client sent one.
        filter: AppSync filter groups (``{"filterGroup": [...]}``), if the client sent them.
        since: The position to resume after, or ``None`` for live only.
    """

    id: str
    pattern: Mapping[str, Any] | None = None
    filter: Mapping[str, Any] | None = None
    since: str | None = None


SubscriptionAuthorizer = Callable[[Principal, SubscriptionRequest], Awaitable[SubscriptionRequest]]
"""Authorize one subscription: return the request to index (possibly narrowed with
:func:`narrow`), or raise :class:`~eventpatterns.errors.Forbidden` to refuse it."""

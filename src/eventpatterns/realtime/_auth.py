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

import copy
import dataclasses
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AuthenticationFailed, ConfigurationError, Forbidden

if TYPE_CHECKING:
    from ..filters._model import Conjunction

__all__ = [
    "Authorizer",
    "Credentials",
    "Principal",
    "SubscriptionAuthorizer",
    "SubscriptionRequest",
    "all_of",
    "first_of",
    "narrow",
    "owner_only",
    "require_scope",
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
        presence: The presence channel to be listed in while the subscription lasts,
            or ``None``. A hook may refuse it (raise ``Forbidden``) or clear it.
        watch: Whether the client also asked for the ``presence`` frames (joins and
            leaves) of that channel; a hook may refuse it or set it to ``False``.
    """

    id: str
    pattern: Mapping[str, Any] | None = None
    filter: Mapping[str, Any] | None = None
    since: str | None = None
    presence: str | None = None
    watch: bool = False


SubscriptionAuthorizer = Callable[[Principal, SubscriptionRequest], Awaitable[SubscriptionRequest]]
"""Authorize one subscription: return the request to index (possibly narrowed with
:func:`narrow`), or raise :class:`~eventpatterns.errors.Forbidden` to refuse it."""


def first_of(*authorizers: Authorizer) -> Authorizer:
    """Return an authorizer that tries ``authorizers`` in order; the first to accept wins.

    For a gateway taking API keys and JWTs alike. When all refuse, the failure
    raised is the first that says what is wrong with the credentials (``expired``,
    ``bad_signature``...), then the first ``unknown_key``, rather than one that only
    says they were not for that authorizer (``missing``, ``malformed``); failing
    that, the last one.

    Args:
        *authorizers: At least one authorizer.

    Raises:
        ConfigurationError: No authorizer was given.

    Example:
        >>> from eventpatterns.realtime import APIKeyAuthorizer, JWTAuthorizer, JWTKey
        >>> auth = first_of(APIKeyAuthorizer(), JWTAuthorizer(JWTKey("k" * 32, "HS256")))
    """
    if not authorizers:
        raise ConfigurationError("first_of() needs at least one authorizer")

    async def authorize(credentials: Credentials) -> Principal:
        failures: list[AuthenticationFailed] = []
        for authorizer in authorizers:
            try:
                return await authorizer(credentials)
            except AuthenticationFailed as exc:
                failures.append(exc)
        for vague in (("missing", "malformed", "unknown_key"), ("missing", "malformed")):
            for failure in failures:
                if failure.reason not in vague:
                    raise failure
        raise failures[-1]

    return authorize


# --------------------------------------------------------------------------- narrowing

Scalar = str | int | float | bool | None

# AppSync's own bounds ("Defining enhanced subscriptions filters"): 10 groups,
# 5 filters per group, 5 values for ``in``.
_APPSYNC_MAX_GROUPS = 10
_APPSYNC_MAX_FILTERS = 5
_APPSYNC_MAX_IN = 5


def narrow(
    request: SubscriptionRequest, required: Mapping[str, Sequence[Scalar]]
) -> SubscriptionRequest:
    """AND a subscription with exact-value constraints, so it sees no one else's events.

    Each key of ``required`` is a dotted field path (``"data.userId"``), each value the
    values that field may hold. The result matches an event only if the client's
    pattern (or filter) matches it *and*, at every required path, the event holds one
    of the required values (for an array, one of its elements). Where the client
    already constrains a path, only the required values its condition accepts are
    kept (tested with the filter engine); if none are, the subscription could never
    see an event it is allowed to, and it is refused.

    * EventBridge patterns: the constraint is added at the top level, so every
      ``$or`` branch is narrowed.
    * AppSync filter groups: an ``eq``/``in`` filter is added to every group (a group
      whose own filters accept none of the values is dropped).
    * Neither (every event): the result is a pattern of the constraints alone.

    Args:
        request: The client's subscription.
        required: Dotted path → the values allowed there, e.g.
            ``{"data.userId": [principal.id]}``.

    Returns:
        A new request with the narrowed pattern or filter.

    Raises:
        Forbidden: No event could match both the request and the constraints
            (an empty intersection), or an AppSync filter is too full to narrow.
        InvalidPattern: The client's pattern or filter is invalid, or the narrowed one
            would be over the pattern limits.
        ConfigurationError: ``required`` is malformed (a path that is not dotted names,
            values that are not a list of JSON scalars).

    Example:
        >>> req = SubscriptionRequest("s1", pattern={"type": ["order.updated"]})
        >>> narrow(req, {"data.userId": ["alice"]}).pattern
        {'type': ['order.updated'], 'data': {'userId': ['alice']}}
    """
    from ..filters import compile as compile_pattern

    pattern = request.pattern
    spec = request.filter
    if pattern is None and spec is None:
        pattern = {}
    for path, values in required.items():
        segments = _segments(path)
        allowed = _values(path, values)
        if pattern is not None:
            pattern = _narrow_pattern(pattern, segments, allowed)
        if spec is not None:
            spec = _narrow_filter(spec, path, segments, allowed)
    # Validate what is returned: the narrowed form must compile within the limits.
    if pattern is not None:
        compile_pattern(dict(pattern))
    if spec is not None:
        compile_pattern(dict(spec))
    return dataclasses.replace(request, pattern=pattern, filter=spec)


def _segments(path: object) -> tuple[str, ...]:
    if not isinstance(path, str) or not path:
        raise ConfigurationError(f"a required path is a non-empty dotted string, not {path!r}")
    segments = tuple(path.split("."))
    if not all(segments) or any(s.startswith("$") for s in segments):
        raise ConfigurationError(f"invalid required path {path!r}")
    return segments


def _values(path: str, values: object) -> list[Scalar]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigurationError(f"the values required at {path!r} must be a list, not {values!r}")
    out: list[Scalar] = []
    for v in values:
        ok = (
            v is None
            or isinstance(v, (str, bool, int))
            or (isinstance(v, float) and math.isfinite(v))
        )
        if not ok:
            raise ConfigurationError(f"a value required at {path!r} must be a JSON scalar: {v!r}")
        if all(repr(v) != repr(x) for x in out):  # 1, 1.0 and True are three values
            out.append(v)
    return out


def _accepted(branch: Conjunction, segments: tuple[str, ...], values: list[Scalar]) -> list[Scalar]:
    """Return the values every condition of ``branch`` at exactly ``segments`` accepts."""
    leaves = [leaf for leaf in branch.leaves if leaf.path == segments]
    return [v for v in values if all(leaf.check(v, {}) for leaf in leaves)]


def _forbidden(path: str) -> Forbidden:
    return Forbidden(
        f"the subscription asks only for events whose {path} the principal may not see"
    )


def _narrow_pattern(
    pattern: Mapping[str, Any], segments: tuple[str, ...], values: list[Scalar]
) -> dict[str, Any]:
    from ..filters import compile as compile_pattern

    path = ".".join(segments)
    branches = compile_pattern(dict(pattern)).branches
    accepted = {repr(v) for b in branches for v in _accepted(b, segments, values)}
    allowed = [v for v in values if repr(v) in accepted]
    if not allowed:
        raise _forbidden(path)
    out = copy.deepcopy(dict(pattern))
    _place_anywhere(out, segments, allowed)
    return out


def _place_anywhere(obj: dict[str, Any], segments: tuple[str, ...], values: list[Scalar]) -> None:
    """AND ``segments: values`` into a pattern object, whatever it already holds."""
    if _place(obj, segments, values):
        return
    # Every spelling of the field holds the client's own operators.
    if "$or" in obj:
        # Every event matching the object matches one branch of its ``$or``: narrowing
        # each branch narrows the object.
        for branch in obj["$or"]:
            _place_anywhere(branch, segments, values)
    else:
        # An ``$or`` of two equal branches is the remaining way to AND a condition.
        obj["$or"] = [_nested(segments, values), _nested(segments, values)]


def _place(obj: dict[str, Any], segments: tuple[str, ...], values: list[Scalar]) -> bool:
    """Add ``segments: values`` to a pattern object as a top-level (AND-ed) condition.

    Nested spellings are tried first (``{"data": {"userId": [...]}}``), then dotted
    ones. An existing list of plain values at the very path is replaced by the
    values it accepts (tested with the filter engine; plain values test each array
    element on its own, so the replacement only ever matches less).
    """
    from ..filters import compile as compile_pattern

    for i in range(1, len(segments) + 1):
        head = ".".join(segments[:i])
        rest = segments[i:]
        held = obj.get(head)
        if head not in obj:
            obj[head] = _nested(rest, values)
            return True
        if rest and isinstance(held, dict):
            if _place(held, rest, values):
                return True
        elif not rest and isinstance(held, list) and all(_is_scalar(x) for x in held):
            # Inside an ``$or`` branch, ``values`` holds what *some* branch accepts.
            accepts = compile_pattern({"v": held}).matches
            kept = [v for v in values if accepts({"v": v})]
            if kept:
                obj[head] = kept
                return True
    return False


def _nested(segments: tuple[str, ...], values: list[Scalar]) -> Any:
    node: Any = list(values)
    for key in reversed(segments):
        node = {key: node}
    return node


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _narrow_filter(
    spec: Mapping[str, Any], path: str, segments: tuple[str, ...], values: list[Scalar]
) -> dict[str, Any]:
    from ..filters import compile as compile_pattern

    groups = []
    for group in compile_pattern(dict(spec)).pattern["filterGroup"]:  # type: ignore[index]
        (branch,) = compile_pattern({"filterGroup": [group]}).branches
        allowed = _accepted(branch, segments, values)
        if not allowed:
            continue  # this group can only match events the principal may not see
        filters = [f for f in group["filters"] if not _plain_at(f, path)]
        if len(filters) >= _APPSYNC_MAX_FILTERS:
            raise Forbidden(
                f"cannot narrow the filter at {path}: a group already has"
                f" {_APPSYNC_MAX_FILTERS} filters (AppSync's limit)"
            )
        for start in range(0, len(allowed), _APPSYNC_MAX_IN):
            chunk = allowed[start : start + _APPSYNC_MAX_IN]
            condition = (
                {"fieldName": path, "operator": "eq", "value": chunk[0]}
                if len(chunk) == 1
                else {"fieldName": path, "operator": "in", "value": chunk}
            )
            groups.append({"filters": [*copy.deepcopy(filters), condition]})
    if not groups:
        raise _forbidden(path)
    if len(groups) > _APPSYNC_MAX_GROUPS:
        raise Forbidden(
            f"cannot narrow the filter at {path}: it would need {len(groups)} groups"
            f" (AppSync allows {_APPSYNC_MAX_GROUPS})"
        )
    return {"filterGroup": groups}


def _plain_at(spec: Mapping[str, Any], path: str) -> bool:
    """Tell whether an AppSync filter is an ``eq``/``in`` at ``path``.

    Such a filter is replaced by the narrowing one: it accepted every value kept, and
    ``eq``/``in`` test each array element on its own.
    """
    return spec.get("fieldName") == path and spec.get("operator") in ("eq", "in")


# --------------------------------------------------------------------------- hooks


def require_scope(*scopes: str) -> SubscriptionAuthorizer:
    """Return a hook that refuses subscriptions from principals lacking any of ``scopes``.

    Args:
        *scopes: The scopes a principal must all hold (``Principal.scopes``).

    Returns:
        A :data:`SubscriptionAuthorizer` that passes requests through unchanged, or
        raises :class:`~eventpatterns.errors.Forbidden` naming the missing scopes.

    Example:
        >>> hook = require_scope("orders:read")
    """
    needed = frozenset(scopes)

    async def authorize(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        missing = needed - principal.scopes
        if missing:
            raise Forbidden(
                f"subscribing needs the scope(s) {', '.join(sorted(missing))}",
                principal=principal.id,
            )
        return request

    return authorize


def owner_only(
    path: str = "data.userId", *, admin_scope: str | None = "admin"
) -> SubscriptionAuthorizer:
    """Return a hook that narrows every subscription to the principal's own events.

    The subscription is :func:`narrow`-ed to ``{path: [principal.id]}``, unless the
    principal holds ``admin_scope`` (pass ``None`` to exempt nobody).

    Args:
        path: The dotted field naming an event's owner.
        admin_scope: A scope whose holders see every subscription unnarrowed.

    Returns:
        A :data:`SubscriptionAuthorizer`; it raises
        :class:`~eventpatterns.errors.Forbidden` when the client asked only for other
        principals' events.

    Raises:
        ConfigurationError: ``path`` is not a dotted field path.

    Example:
        >>> hook = owner_only("data.userId", admin_scope="support")
    """
    _segments(path)

    async def authorize(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        if admin_scope is not None and admin_scope in principal.scopes:
            return request
        try:
            return narrow(request, {path: [principal.id]})
        except Forbidden as exc:
            raise Forbidden(str(exc), principal=principal.id) from None

    return authorize


def all_of(*hooks: SubscriptionAuthorizer) -> SubscriptionAuthorizer:
    """Return a hook that runs ``hooks`` in order, each on the previous one's result.

    Args:
        *hooks: The hooks; the first to raise refuses the subscription.

    Example:
        >>> hook = all_of(require_scope("orders:read"), owner_only())
    """

    async def authorize(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        for hook in hooks:
            request = await hook(principal, request)
        return request

    return authorize

"""narrow() and the subscription hooks: a narrowed subscription never sees another user's events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ConfigurationError, Forbidden, InvalidPattern
from eventpatterns.filters import compile as compile_pattern
from eventpatterns.realtime import (
    Principal,
    SubscriptionRequest,
    all_of,
    narrow,
    owner_only,
    require_scope,
)

pytestmark = pytest.mark.anyio

USERS = ["u1", "u2", "u12", "U1", "v1"]


def request(pattern: Any = None, spec: Any = None) -> SubscriptionRequest:
    return SubscriptionRequest("s1", pattern=pattern, filter=spec)


def event(user: Any = "u1", kind: str = "a", **extra: Any) -> dict[str, Any]:
    return {"type": "t", "data": {"userId": user, "kind": kind, **extra}}


# -- examples -----------------------------------------------------------------------------


def test_no_pattern_becomes_the_constraint_alone() -> None:
    narrowed = narrow(request(), {"data.userId": ["u1"]})
    assert narrowed.pattern == {"data": {"userId": ["u1"]}}
    assert narrowed.filter is None
    assert narrowed.id == "s1"


def test_constraint_is_added_beside_the_clients_conditions() -> None:
    narrowed = narrow(request({"type": ["t"], "data": {"kind": ["a"]}}), {"data.userId": ["u1"]})
    assert narrowed.pattern == {"type": ["t"], "data": {"kind": ["a"], "userId": ["u1"]}}
    m = compile_pattern(narrowed.pattern)
    assert m.matches(event("u1"))
    assert not m.matches(event("u2"))
    assert not m.matches(event("u1", kind="b"))


def test_the_request_is_not_modified() -> None:
    pattern = {"data": {"kind": ["a"]}}
    narrow(request(pattern), {"data.userId": ["u1"]})
    assert pattern == {"data": {"kind": ["a"]}}


def test_client_condition_keeps_only_the_values_it_accepts() -> None:
    narrowed = narrow(request({"data": {"userId": ["u2", "u1"]}}), {"data.userId": ["u1", "v1"]})
    assert narrowed.pattern == {"data": {"userId": ["u1"]}}
    narrowed = narrow(
        request({"data.userId": [{"prefix": "u"}]}), {"data.userId": ["u1", "v1", "u2"]}
    )
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert [u for u in USERS if m.matches(event(u))] == ["u1", "u2"]


@pytest.mark.parametrize(
    "pattern",
    [
        {"data": {"userId": ["u2"]}},
        {"data.userId": [{"prefix": "v"}]},
        {"data": {"userId": [{"anything-but": "u1"}]}},
        {"data": {"userId": [{"exists": False}]}},
        {"$or": [{"data": {"userId": ["u2"]}}, {"data": {"userId": [{"prefix": "x"}]}}]},
    ],
)
def test_empty_intersection_is_forbidden(pattern: dict[str, Any]) -> None:
    with pytest.raises(Forbidden, match=r"data\.userId"):
        narrow(request(pattern), {"data.userId": ["u1"]})


def test_every_or_branch_is_narrowed() -> None:
    pattern = {"$or": [{"data": {"kind": ["a"]}}, {"data": {"userId": [{"prefix": "u"}]}}]}
    narrowed = narrow(request(pattern), {"data.userId": ["u1"]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert m.matches(event("u1", kind="a"))
    assert not m.matches(event("u2", kind="a"))  # the branch on kind alone is narrowed too
    assert not m.matches(event("u12", kind="b"))


def test_or_nested_below_the_path_prefix() -> None:
    pattern = {"data": {"$or": [{"kind": ["a"]}, {"userId": ["u2"]}]}}
    narrowed = narrow(request(pattern), {"data.userId": ["u1"]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert m.matches(event("u1", kind="a"))
    assert not m.matches(event("u2", kind="b"))
    assert not m.matches(event("u2", kind="a"))


def test_every_spelling_taken_still_narrows() -> None:
    pattern = {"data.userId": [{"prefix": "u"}], "data": {"userId": [{"suffix": "1"}]}}
    narrowed = narrow(request(pattern), {"data.userId": ["u1", "u2"]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert [u for u in USERS if m.matches(event(u))] == ["u1"]
    pattern["$or"] = [{"type": ["t"]}, {"data": {"kind": ["b"]}}]
    narrowed = narrow(request(pattern), {"data.userId": ["u1", "u2"]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert [u for u in USERS if m.matches(event(u))] == ["u1"]
    assert [u for u in USERS if m.matches(event(u) | {"type": "x"})] == []


def test_several_required_paths() -> None:
    narrowed = narrow(request(), {"data.userId": ["u1"], "data.tenant": ["t1", 7]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert m.matches(event("u1", tenant=7))
    assert not m.matches(event("u1", tenant="t2"))
    assert not m.matches(event("u1"))


def test_event_naming_several_users_reaches_each_of_them() -> None:
    m = compile_pattern(narrow(request(), {"data.userId": ["u1"]}).pattern)
    assert m.matches(event(["u2", "u1"]))
    assert not m.matches(event(["u2", "v1"]))
    assert not m.matches(event({"u1": 1}))


def test_numbers_booleans_and_null_are_distinct_values() -> None:
    narrowed = narrow(request(), {"data.userId": [1, True, None, 1]})
    assert narrowed.pattern == {"data": {"userId": [1, True, None]}}


@pytest.mark.parametrize(
    "required",
    [
        {"": ["u1"]},
        {"data..userId": ["u1"]},
        {"$or": ["u1"]},
        {"data.userId": "u1"},
        {"data.userId": [["u1"]]},
        {"data.userId": [float("nan")]},
    ],
)
def test_invalid_constraints_are_configuration_errors(required: Any) -> None:
    with pytest.raises(ConfigurationError):
        narrow(request(), required)


def test_an_empty_value_list_forbids_everything() -> None:
    with pytest.raises(Forbidden):
        narrow(request(), {"data.userId": []})


def test_invalid_client_pattern_is_invalid_pattern() -> None:
    with pytest.raises(InvalidPattern):
        narrow(request({"data": {"userId": "u1"}}), {"data.userId": ["u1"]})
    with pytest.raises(InvalidPattern):
        narrow(request(spec={"filterGroup": []}), {"data.userId": ["u1"]})


def test_narrowed_pattern_over_the_size_limit_is_invalid_pattern() -> None:
    with pytest.raises(InvalidPattern, match="4096"):
        narrow(request({"type": ["x" * 4000]}), {"data.userId": ["y" * 200]})


# -- AppSync filter groups -----------------------------------------------------------------


def group(*filters: tuple[str, str, Any]) -> dict[str, Any]:
    return {"filters": [{"fieldName": f, "operator": o, "value": v} for f, o, v in filters]}


def test_appsync_condition_added_to_every_group() -> None:
    spec = {"filterGroup": [group(("data.kind", "eq", "a")), group(("type", "eq", "t"))]}
    narrowed = narrow(request(spec=spec), {"data.userId": ["u1"]})
    assert narrowed.pattern is None
    assert narrowed.filter == {
        "filterGroup": [
            group(("data.kind", "eq", "a"), ("data.userId", "eq", "u1")),
            group(("type", "eq", "t"), ("data.userId", "eq", "u1")),
        ]
    }


def test_appsync_groups_keep_the_values_they_accept_and_dead_groups_go() -> None:
    spec = {
        "filterGroup": [
            group(("data.userId", "beginsWith", "u")),
            group(("data.userId", "in", ["v1", "u2"])),
            group(("data.userId", "eq", "zzz")),
        ]
    }
    narrowed = narrow(request(spec=spec), {"data.userId": ["u1", "v1"]})
    assert narrowed.filter == {
        "filterGroup": [
            group(("data.userId", "beginsWith", "u"), ("data.userId", "eq", "u1")),
            group(("data.userId", "eq", "v1")),
        ]
    }


def test_appsync_empty_intersection_is_forbidden() -> None:
    spec = {"filterGroup": [group(("data.userId", "ne", "u1"))]}
    with pytest.raises(Forbidden):
        narrow(request(spec=spec), {"data.userId": ["u1"]})


def test_appsync_many_values_are_split_over_groups() -> None:
    users = [f"u{i}" for i in range(12)]
    narrowed = narrow(
        request(spec={"filterGroup": [group(("type", "eq", "t"))]}), {"data.userId": users}
    )
    assert narrowed.filter is not None
    assert len(narrowed.filter["filterGroup"]) == 3
    m = compile_pattern(narrowed.filter)
    assert all(m.matches(event(u)) for u in users)
    assert not m.matches(event("v1"))


def test_appsync_full_group_cannot_be_narrowed() -> None:
    full = group(*[(f"data.f{i}", "eq", i) for i in range(5)])
    with pytest.raises(Forbidden, match="5 filters"):
        narrow(request(spec={"filterGroup": [full]}), {"data.userId": ["u1"]})
    too_many = [f"u{i}" for i in range(11 * 5)]
    with pytest.raises(Forbidden, match="groups"):
        narrow(
            request(spec={"filterGroup": [group(("type", "eq", "t"))]}), {"data.userId": too_many}
        )


# -- the property: a narrowed subscription matches only what it should ----------------------

user_values = st.sampled_from(USERS)
event_users = st.one_of(
    user_values,
    st.sampled_from([1, 0, None, True, "", "u"]),
    st.lists(user_values, min_size=1, max_size=3),
    st.just({"x": "u1"}),
)
text = st.sampled_from(["u", "u1", "v", "1", "U", ""])
alternative = st.one_of(
    user_values,
    st.sampled_from([1, None]),
    st.builds(lambda t: {"prefix": t}, text),
    st.builds(lambda t: {"suffix": t}, text),
    st.builds(lambda t: {"equals-ignore-case": t}, text),
    st.builds(lambda t: {"wildcard": f"{t}*"}, text),
    st.builds(lambda u: {"anything-but": u}, st.lists(user_values, min_size=1, max_size=2)),
    st.builds(lambda t: {"anything-but": {"prefix": t}}, st.sampled_from(["u", "v"])),
    st.builds(lambda b: {"exists": b}, st.booleans()),
)
conditions = st.lists(alternative, min_size=1, max_size=3)


@st.composite
def branches(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    spelling = draw(st.sampled_from(["nested", "dotted", "both", "none"]))
    if spelling in ("nested", "both"):
        out["data"] = {"userId": draw(conditions)}
    if spelling in ("dotted", "both"):
        out["data.userId"] = draw(conditions)
    if draw(st.booleans()):
        out.setdefault("data", {})["kind"] = draw(st.lists(st.sampled_from(["a", "b"]), min_size=1))
    if draw(st.booleans()):
        out["type"] = ["t"]
    return out


@st.composite
def patterns(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(branches())
    if draw(st.booleans()):
        ors = draw(st.lists(branches().filter(bool), min_size=2, max_size=3))
        if draw(st.booleans()) and "data" in base and isinstance(base["data"], dict):
            base["data"]["$or"] = [b.get("data", {"kind": ["a"]}) for b in ors]
        else:
            base["$or"] = ors
    return base


events = st.builds(
    lambda u, k, t: {"type": t, "data": {"userId": u, "kind": k}},
    event_users,
    st.sampled_from(["a", "b"]),
    st.sampled_from(["t", "x"]),
) | st.builds(lambda k: {"type": "t", "data": {"kind": k}}, st.sampled_from(["a", "b"]))


def owners(e: dict[str, Any]) -> list[Any]:
    value = e["data"].get("userId")
    if isinstance(value, list):
        return value
    return [] if isinstance(value, dict) or "userId" not in e["data"] else [value]


def check_narrowing(client: Any, narrowed: Any, required: list[str], evts: list[Any]) -> None:
    m_client, m_narrowed = compile_pattern(client), compile_pattern(narrowed)
    # Beside the drawn events, every allowed user alone and in an array with another one.
    probes = [event(u, kind) for u in (*USERS, ["u1", "U1"]) for kind in ("a", "b")]
    probes += [event([r, o], "a") for r in required for o in USERS if o != r]
    for e in [*evts, *probes]:
        allowed = any(o in required for o in owners(e) if isinstance(o, str))
        if m_narrowed.matches(e):
            assert m_client.matches(e), (client, narrowed, e)
            assert allowed, (client, narrowed, e)
        elif m_client.matches(e) and isinstance(e["data"].get("userId"), str):
            # Narrowing loses nothing the principal may see (scalar owners).
            assert not allowed, (client, narrowed, e)


@settings(max_examples=300)
@given(
    pattern=patterns(),
    required=st.lists(user_values, min_size=1, max_size=3, unique=True),
    evts=st.lists(events, min_size=1, max_size=25),
)
def test_narrowed_pattern_matches_only_allowed_events(
    pattern: dict[str, Any], required: list[str], evts: list[Any]
) -> None:
    try:
        compile_pattern(pattern)
    except InvalidPattern:
        return
    try:
        narrowed = narrow(request(pattern), {"data.userId": required})
    except Forbidden:
        # Refused: the client's pattern matches no scalar-owned event the principal may see.
        m = compile_pattern(pattern)
        for e in evts:
            if isinstance(e["data"].get("userId"), str) and e["data"]["userId"] in required:
                assert not m.matches(e), (pattern, e)
        return
    check_narrowing(pattern, narrowed.pattern, required, evts)


appsync_filters = st.one_of(
    st.tuples(st.just("data.userId"), st.sampled_from(["eq", "ne", "beginsWith"]), text),
    st.tuples(
        st.just("data.userId"),
        st.sampled_from(["in", "notIn", "containsAny"]),
        st.lists(user_values, min_size=1, max_size=3),
    ),
    st.tuples(st.just("data.userId"), st.sampled_from(["contains", "notContains"]), user_values),
    st.tuples(st.just("data.kind"), st.sampled_from(["eq", "ne"]), st.sampled_from(["a", "b"])),
)


@settings(max_examples=300)
@given(
    groups=st.lists(st.lists(appsync_filters, min_size=1, max_size=4), min_size=1, max_size=4),
    required=st.lists(user_values, min_size=1, max_size=3, unique=True),
    evts=st.lists(events, min_size=1, max_size=25),
)
def test_narrowed_filter_matches_only_allowed_events(
    groups: list[list[tuple[str, str, Any]]], required: list[str], evts: list[Any]
) -> None:
    spec = {"filterGroup": [group(*g) for g in groups]}
    try:
        compile_pattern(spec)
    except InvalidPattern:
        return
    try:
        narrowed = narrow(request(spec=spec), {"data.userId": required})
    except Forbidden:
        m = compile_pattern(spec)
        for e in evts:
            if isinstance(e["data"].get("userId"), str) and e["data"]["userId"] in required:
                assert not m.matches(e), (spec, e)
        return
    check_narrowing(spec, narrowed.filter, required, evts)


# -- hooks ---------------------------------------------------------------------------------

ALICE = Principal("u1", scopes=frozenset({"orders:read"}))
ADMIN = Principal("root", scopes=frozenset({"admin", "orders:read"}))


async def test_owner_only_narrows_to_the_principals_id() -> None:
    hook = owner_only()
    narrowed = await hook(ALICE, request({"type": ["t"]}))
    assert narrowed.pattern == {"type": ["t"], "data": {"userId": ["u1"]}}
    with pytest.raises(Forbidden) as info:
        await hook(ALICE, request({"data": {"userId": ["u2"]}}))
    assert info.value.principal == "u1"


async def test_owner_only_lets_admins_through_unless_disabled() -> None:
    req = request({"data": {"userId": ["u2"]}})
    assert await owner_only()(ADMIN, req) is req
    narrowed = await owner_only("data.owner", admin_scope=None)(ADMIN, request())
    assert narrowed.pattern == {"data": {"owner": ["root"]}}


def test_owner_only_checks_its_path_when_built() -> None:
    with pytest.raises(ConfigurationError):
        owner_only("data..x")


async def test_require_scope() -> None:
    req = request()
    assert await require_scope("orders:read")(ALICE, req) is req
    with pytest.raises(Forbidden, match="orders:write") as info:
        await require_scope("orders:read", "orders:write")(ALICE, req)
    assert info.value.principal == "u1"


async def test_all_of_runs_hooks_in_order() -> None:
    hook = all_of(require_scope("orders:read"), owner_only())
    narrowed = await hook(ALICE, request())
    assert narrowed.pattern == {"data": {"userId": ["u1"]}}
    with pytest.raises(Forbidden):
        await hook(Principal("u3"), request())


def test_or_branch_lists_keep_only_their_own_values() -> None:
    # Found by the property test: each branch accepts a different required value.
    pattern = {
        "data": {"userId": [{"anything-but": {"prefix": "u"}}]},
        "data.userId": [{"anything-but": {"prefix": "u"}}],
        "$or": [{"data": {"userId": ["u1"]}}, {"data": {"kind": ["a"]}}],
    }
    narrowed = narrow(request(pattern), {"data.userId": ["U1"]})
    assert narrowed.pattern is not None
    m = compile_pattern(narrowed.pattern)
    assert m.matches(event("U1", kind="a"))
    assert not m.matches(event("U1", kind="b"))

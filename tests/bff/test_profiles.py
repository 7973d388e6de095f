"""Profiles and projections: shaping, start-up validation, hostile input, the spec parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from eventpatterns.bff import MAX_DEPTH, Profile, Profiles, Projection, parse_fields
from eventpatterns.core import Event, EventModel, EventRegistry
from eventpatterns.errors import ConfigurationError
from eventpatterns.realtime import Principal

REGISTRY = EventRegistry("bff-tests")


class Customer(EventModel):
    name: str
    email: str


class OrderShipped(EventModel, type="test.bff.order.shipped", registry=REGISTRY):
    order_id: str
    total_cents: int
    status: str = "order.shipped"
    customer: Customer | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


MESSAGES = {("order.shipped", "fr"): "Expédiée", ("order.shipped", "en"): "Shipped"}


def localizer(key: str, locale: str) -> str:
    return MESSAGES.get((key, locale), key)


def shipped(**data: Any) -> Event:
    values: dict[str, Any] = {"order_id": "o1", "total_cents": 1999}
    values.update(data)
    return OrderShipped.model_validate(values).to_event(source="/shop")


def profiles() -> Profiles:
    web = Profile(name="web")
    ios = Profile(
        name="ios",
        projections={
            OrderShipped: Projection.parse(
                "order_id as id, total_cents as total, status, customer.name as customer",
                form="compact",
                localize="status",
            )
        },
        unlisted="drop",
        locale="fr",
    )
    return Profiles([web, ios], registry=REGISTRY, localizer=localizer)


def test_a_compact_mobile_form_selects_renames_and_localizes() -> None:
    shaped = profiles().shape(Principal("u1", claims={"profile": "ios"}), shipped())
    assert isinstance(shaped, dict)
    assert set(shaped) == {"id", "type", "time", "data"}
    assert shaped["data"] == {"id": "o1", "total": 1999, "status": "Expédiée"}


def test_the_rich_web_form_keeps_the_envelope_and_drops_the_schema() -> None:
    rich = Profile(name="web", projections={OrderShipped: "order_id, customer.email, note"})
    event = shipped(customer={"name": "Ann", "email": "a@x"})
    shaped = rich.shape(event)
    assert isinstance(shaped, Event)
    assert shaped.id == event.id
    assert shaped.source == "/shop"
    assert shaped.dataschema is None
    assert shaped.data == {"order_id": "o1", "customer.email": "a@x", "note": None}


def test_the_profile_of_a_principal_comes_from_its_claim_or_the_default() -> None:
    group = profiles()
    assert group.profile_of(Principal("u", claims={"profile": "ios"})).name == "ios"
    assert group.profile_of(Principal("u", claims={"profile": "tv"})).name == "web"
    assert group.profile_of(Principal("u")).name == "web"
    assert group.profile_of(object()).name == "web"
    chosen = Profiles(group, profile_of=lambda p: "ios", registry=REGISTRY)
    assert chosen.profile_of(None).name == "ios"
    assert [p.name for p in chosen] == ["web", "ios"]


def test_encode_gives_the_json_text_a_gateway_frame_carries() -> None:
    group = profiles()
    event = shipped()
    assert json.loads(group.encode(group["web"], event) or "") == event.to_dict()
    compact = json.loads(group.encode(group["ios"], event, locale="en") or "")
    assert compact["data"]["status"] == "Shipped"
    other = Event(type="test.bff.other", source="/s", data={})
    assert group.encode(group["ios"], other) is None  # unlisted: dropped
    assert group.shape(Principal("u"), other) is other  # web: passed


def test_a_projection_naming_a_missing_field_fails_at_start_up() -> None:
    bad = Profile(name="android", projections={OrderShipped: "order_id, total"})
    with pytest.raises(ConfigurationError) as caught:
        Profiles([Profile(name="web"), bad], registry=REGISTRY)
    message = str(caught.value)
    assert "'android'" in message
    assert OrderShipped.event_type in message
    assert "'total'" in message


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("customer.name", True),
        ("customer.phone", False),
        ("extra.anything.below", True),
        ("order_id.deeper", False),
        ("note", True),
    ],
)
def test_nested_paths_are_checked_against_nested_models(spec: str, ok: bool) -> None:
    profile = Profile(name="web", projections={OrderShipped.event_type: spec})
    if ok:
        Profiles([profile], registry=REGISTRY)
    else:
        with pytest.raises(ConfigurationError, match="has no field"):
            Profiles([profile], registry=REGISTRY)


def test_undeclared_types_are_refused_unless_allowed() -> None:
    profile = Profile(name="web", projections={"test.bff.undeclared": "a"})
    with pytest.raises(ConfigurationError, match="no EventModel"):
        Profiles([profile], registry=REGISTRY)
    assert Profiles([profile], registry=REGISTRY, allow_undeclared=True)["web"] is profile


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Profiles([Profile(name="web"), Profile(name="web")]), "two profiles"),
        (lambda: Profiles([Profile(name="ios")]), "default profile"),
        (lambda: Profiles(["web"]), "Profile objects"),  # type: ignore[list-item]
        (lambda: Profile(name="Web!"), "profile name"),
        (lambda: Profile(name="web", projections={"": "a"}), "projection key"),
        (lambda: Profile(name="web", projections={EventModel: "a"}), "declares no event type"),
        (lambda: Projection(fields=("a",), rename={"b": "c"}), "not selected"),
        (lambda: Projection(rename={"a.b": "c"}), "top-level"),
        (lambda: Projection(fields=("a", "b"), rename={"a": "b"}), "repeat"),
        (lambda: Projection(fields=("a",), rename={"a": "1x"}), "not a field name"),
        (lambda: Projection(fields=("a..b",)), "not a field path"),
        (lambda: Projection.parse("a", form="tiny"), "invalid projection option"),
        (lambda: Profile(name="web", unlisted="keep"), "invalid profile option"),
    ],
)
def test_bad_profiles_are_refused_with_a_clear_error(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_missing_fields_at_run_time_are_left_out_and_required_ones_hide_the_event() -> None:
    projection = Projection.parse("order_id, customer.name, note", required="order_id")
    profile = Profile(name="web", projections={"t": projection})
    assert profile.shape(Event(type="t", source="/s", data={"note": "n"})) is None
    shaped = profile.shape(Event(type="t", source="/s", data={"order_id": "o"}))
    assert isinstance(shaped, Event)
    assert shaped.data == {"order_id": "o"}
    for data in (None, [1, 2], "text", 7):  # not an object: projects to {}
        out = Profile(name="web", projections={"t": "a"}).shape(
            Event(type="t", source="/s", data=data)
        )
        assert isinstance(out, Event)
        assert out.data == {}


def test_json_bytes_data_is_projected_like_objects() -> None:
    event = Event(
        type="t", source="/s", data=b'{"a": 1, "b": 2}', datacontenttype="application/json"
    )
    shaped = Profile(name="web", projections={"t": "a"}).shape(event)
    assert isinstance(shaped, Event)
    assert shaped.data == {"a": 1}


def test_huge_strings_are_cut_and_deep_nesting_is_not_walked() -> None:
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(5000):  # far past any recursion limit
        deep = {"d": deep}
    data = {"big": "é" * 1_000_000, "deep": deep}
    projection = Projection(fields=("big", "deep.d.d"), max_string=100)
    out = projection.apply(data)
    assert out is not None
    assert len(out["big"]) == 100
    assert out["big"].endswith("…")
    assert isinstance(out["deep.d.d"], dict)
    keep_all = Projection(max_string=10, form="compact").apply({"a": "y" * 50, "b": None})
    assert keep_all == {"a": "y" * 9 + "…"}


def test_localisation_results_are_cut_too_and_keys_without_a_hook_stay() -> None:
    projection = Projection(fields=("s",), localize=("s",), max_string=5)
    assert projection.apply({"s": "k"}, locale="fr", localizer=lambda key, locale: "long text") == {
        "s": "long…"
    }
    assert projection.apply({"s": "k"}, locale="fr") == {"s": "k"}
    assert projection.apply({"s": 3}, locale="fr", localizer=lambda key, locale: "x") == {"s": 3}


def test_a_push_notification_is_built_from_the_projected_event() -> None:
    group = profiles()
    event = shipped(customer={"name": "Ann", "email": "a@x"})
    note = group["ios"].notification(
        event, title="order.title", body="{customer} {missing}", localizer=localizer, topic="orders"
    )
    assert note is not None
    assert note.title == "order.title"
    assert note.body == "Ann "
    assert note.topic == "orders"
    assert note.data == {"id": "o1", "total": "1999", "status": "Expédiée", "customer": "Ann"}
    assert note.idempotency_key == f"ios:{event.id}"
    hidden = Event(type="test.bff.other", source="/s", data={})
    assert group["ios"].notification(hidden, title="t") is None
    web = group["web"].notification(
        Event(type="x", source="/s", data={"flag": True, "n": None, "l": [1]}), title="{flag}{n}"
    )
    assert web is not None
    assert web.title == "true"
    assert web.data == {"flag": "true"}


def test_parse_fields_reads_items_and_renames() -> None:
    assert parse_fields(" a , b.c as d,e ") == (("a", "b.c", "e"), {"b.c": "d"})


@pytest.mark.parametrize(
    "spec",
    ["", "a,", "a as", "a as b c", "a b", "1a", "a as 1", "a, a", "a as b, b", "x." * 9 + "x"],
)
def test_parse_fields_refuses_bad_lists(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_fields(spec)


def test_parse_fields_refuses_non_strings() -> None:
    with pytest.raises(ConfigurationError, match="is a string"):
        parse_fields(3)  # type: ignore[arg-type]


_WORDS = st.sampled_from(["a", "b_1", "as", "x.y", ",", " ", ".", "1", "é", "a.b.c", "\n"])


@settings(max_examples=300)
@given(st.lists(_WORDS, max_size=12).map("".join) | st.text(max_size=60))
def test_parse_fields_either_parses_or_raises_configuration_error(spec: str) -> None:
    try:
        fields, rename = parse_fields(spec)
    except ConfigurationError:
        return
    assert fields
    assert all(len(f.split(".")) <= MAX_DEPTH for f in fields)
    outputs = [rename.get(f, f) for f in fields]
    assert len(set(outputs)) == len(outputs)
    projection = Projection(fields=fields, rename=rename)  # what parses builds
    assert projection.apply({}) == {}


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_any_data_projects_without_crashing(data: Any) -> None:
    out = Projection(fields=("a", "a.b", "c"), rename={"a.b": "ab"}, form="compact").apply(data)
    assert out is not None
    assert set(out) <= {"a", "ab", "c"}


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_OPTIONS = st.dictionaries(
    st.sampled_from(["fields", "rename", "required", "localize", "form", "max_string", "other"]),
    _JSONISH | st.sampled_from(["a, b as c", "compact", "rich", 0, 10]),
    max_size=4,
)


@settings(max_examples=300)
@given(_OPTIONS)
def test_any_projection_spec_builds_or_raises_configuration_error(spec: dict[str, Any]) -> None:
    try:
        profile = Profile(name="web", projections={"t": spec})
    except ConfigurationError:
        return
    projection = profile.projections["t"]
    assert projection.form in ("rich", "compact")
    shaped = profile.shape(Event(type="t", source="/s", data={"a": 1, "b": {"c": "x"}}))
    assert shaped is None or isinstance(shaped, Event | dict)


def test_profiles_build_one_notification_with_a_variant_per_platform() -> None:
    group = profiles()
    event = shipped(customer={"name": "Ann", "email": "a@x"})
    note = group.notification(event, title="{id} {status}", body="{customer}", topic="orders")
    assert note is not None
    # The default profile (web) gives the notification's own text and key...
    assert (note.title, note.topic, note.idempotency_key) == (
        " order.shipped",
        "orders",
        f"web:{event.id}",
    )
    # ...and the iOS devices get the iOS profile's form, localised in its locale.
    assert set(note.variants) == {"apns"}  # the profiles are web and ios: no android
    ios = note.for_platform("apns")
    assert (ios.title, ios.body) == ("o1 Expédiée", "Ann")
    assert ios.data == {"id": "o1", "total": "1999", "status": "Expédiée", "customer": "Ann"}
    assert note.for_platform("webpush") is note


def test_a_platform_whose_profile_hides_the_event_gets_nothing() -> None:
    group = profiles()
    other = Event(type="test.bff.other", source="/s", data={"n": 1})
    note = group.notification(other, title="{n}")
    assert note is not None
    assert note.variants == {"apns": None}  # ios drops unlisted types
    assert (note.sends_to("apns"), note.sends_to("webpush")) == (False, True)
    only_ios = Profiles([Profile(name="web", unlisted="drop"), Profile(name="ios")])
    ios_only = only_ios.notification(other, title="{n}")
    assert ios_only is not None
    assert ios_only.variants == {"apns": ios_only.variants["apns"], "webpush": None, "fcm": None}
    assert ios_only.title == "1"  # the first profile that shows it gives the text
    assert only_ios.notification(other, title="x", platforms={"webpush": "web"}) is None


def test_platforms_must_name_known_platforms_and_profiles() -> None:
    group = profiles()
    with pytest.raises(ConfigurationError, match="'ios' to 'ios'"):
        group.notification(shipped(), title="t", platforms={"ios": "ios"})
    with pytest.raises(ConfigurationError, match="'fcm' to 'android'"):
        group.notification(shipped(), title="t", platforms={"fcm": "android"})

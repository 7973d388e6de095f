"""Interoperability with the ``cloudevents`` SDK, both APIs, both directions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_core_http import binary_expectation

from eventpatterns.core import Event, is_json_content_type
from eventpatterns.errors import ArgumentTypeError, InvalidEvent, MissingDependency
from strategies import events, json_values

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
core_http = pytest.importorskip("cloudevents.core.bindings.http")
core_event = pytest.importorskip("cloudevents.core.v1.event")
legacy_http = pytest.importorskip("cloudevents.v1.http")
legacy_conversion = pytest.importorskip("cloudevents.v1.conversion")

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

#: Events whose data the SDK's JSON writer keeps (it str()s data of other types).
json_typed_events = events().filter(lambda e: is_json_content_type(e.datacontenttype))
#: Events the SDK's binary writer keeps: dict data, string extensions, no content type
#: (it writes lists with str() and booleans as "True").
sdk_binary_events = events(data=st.dictionaries(st.text(max_size=8), json_values, max_size=4)).map(
    lambda e: e.model_copy(
        update={"extensions": {k: v for k, v in e.extensions.items() if isinstance(v, str)}}
    )
)


def make(**overrides: Any) -> Event:
    fields: dict[str, Any] = {"type": "order.created", "source": "/shop", "id": "1", "time": T0}
    fields.update(overrides)
    return Event(**fields)


# -- object conversion --------------------------------------------------------------


def test_to_sdk_defaults_to_the_core_api() -> None:
    sdk = make(subject="o-7", extensions={"tenant": "acme"}, data={"a": 1}).to_sdk()
    assert isinstance(sdk, core_event.CloudEvent)
    assert sdk.get_time() == T0
    assert sdk.get_subject() == "o-7"
    assert sdk.get_extension("tenant") == "acme"
    assert sdk.get_data() == {"a": 1}


def test_to_sdk_legacy_api() -> None:
    sdk = make(data=b"\x01", extensions={"n": 2}).to_sdk(api="legacy")
    assert isinstance(sdk, legacy_http.CloudEvent)
    assert sdk["time"] == "2024-05-01T12:00:00Z"
    assert sdk["n"] == 2
    assert sdk.get_data() == b"\x01"


@pytest.mark.parametrize("api", ["core", "legacy"])
def test_to_sdk_keeps_absent_time_absent(api: Any) -> None:
    event = Event.from_dict({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    sdk = event.to_sdk(api=api)
    assert "time" not in sdk.get_attributes()
    assert Event.from_sdk(sdk) == event


def test_to_sdk_rejects_unknown_api() -> None:
    with pytest.raises(ValueError, match="'auto', 'core' or 'legacy'"):
        make().to_sdk(api="v2")  # type: ignore[arg-type]


@given(events())
def test_core_object_round_trip(event: Event) -> None:
    assert Event.from_sdk(event.to_sdk(api="core")) == event


@given(events())
def test_legacy_object_round_trip(event: Event) -> None:
    assert Event.from_sdk(event.to_sdk(api="legacy")) == event


def test_from_sdk_reads_native_sdk_events() -> None:
    core = core_event.CloudEvent(
        {"type": "t", "source": "/s", "id": "1", "time": T0, "traceparent": "00-1"}, {"a": 1}
    )
    legacy = legacy_http.CloudEvent(
        {"type": "t", "source": "/s", "id": "1", "time": "2024-05-01T12:00:00+00:00"}, [1]
    )
    assert Event.from_sdk(core) == make(
        type="t", source="/s", extensions={"traceparent": "00-1"}, data={"a": 1}
    )
    assert Event.from_sdk(legacy) == make(type="t", source="/s", data=[1])


def test_from_sdk_rejects_other_objects() -> None:
    with pytest.raises(ArgumentTypeError, match="takes a cloudevents SDK event, got dict") as info:
        Event.from_sdk({"id": "1"})
    assert isinstance(info.value, TypeError)
    assert info.value.argument == "obj"

    class Odd:
        def get_attributes(self) -> list[str]:
            return []

        def get_data(self) -> None:
            return None

    with pytest.raises(ArgumentTypeError, match=r"get_attributes\(\) returning a mapping"):
        Event.from_sdk(Odd())


def test_from_sdk_names_the_broken_rule() -> None:
    legacy = legacy_http.CloudEvent({"type": "t", "source": "/s", "specversion": "0.3"})
    with pytest.raises(InvalidEvent) as info:
        Event.from_sdk(legacy)
    assert info.value.attribute == "specversion"
    assert "must be '1.0'" in str(info.value)

    bad_ext = core_event.CloudEvent({"type": "t", "source": "/s", "ext": 1.5})
    with pytest.raises(InvalidEvent) as info:
        Event.from_sdk(bad_ext)
    assert info.value.attribute == "ext"
    assert "got float" in str(info.value)


def test_from_sdk_stringifies_odd_time_values() -> None:
    class Stamp:
        def __str__(self) -> str:
            return "2024-05-01T12:00:00Z"

    class Duck:
        def get_attributes(self) -> dict[str, Any]:
            return {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": Stamp()}

        def get_data(self) -> None:
            return None

    assert Event.from_sdk(Duck()).time == T0


# -- the SDK's own serialisers ------------------------------------------------------


@given(json_typed_events)
def test_sdk_core_structured_is_read_by_us(event: Event) -> None:
    message = core_http.to_structured_event(event.to_sdk())
    assert Event.from_http(message.headers, message.body) == event


@given(events())
def test_our_structured_is_read_by_sdk_core(event: Event) -> None:
    headers, body = event.to_http("structured")
    message = core_http.HTTPMessage(headers=headers, body=body)
    assert Event.from_sdk(core_http.from_http_event(message)) == event


@given(sdk_binary_events)
def test_sdk_core_binary_is_read_by_us(event: Event) -> None:
    message = core_http.to_binary_event(event.to_sdk())
    assert Event.from_http(message.headers, message.body) == event


@given(events(data=json_values))
def test_our_binary_is_read_by_sdk_core(event: Event) -> None:
    headers, body = event.to_http("binary")
    sdk = core_http.from_http_event(core_http.HTTPMessage(headers=headers, body=body))
    assert Event.from_sdk(sdk) == binary_expectation(event)


@given(json_typed_events)
def test_sdk_legacy_structured_is_read_by_us(event: Event) -> None:
    headers, body = legacy_conversion.to_structured(event.to_sdk(api="legacy"))
    assert Event.from_http(headers, body) == event


def _parses_as_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@given(
    events().filter(
        # The 1.x SDK parses base64 data as JSON when the content type is JSON, or when
        # there is none and the bytes happen to be JSON text (b"0" becomes 0), and it
        # turns empty bytes and the empty string into no data.
        lambda e: (
            e.data != ""
            and (
                not isinstance(e.data, bytes)
                or (e.datacontenttype is None and e.data != b"" and not _parses_as_json(e.data))
            )
        )
    )
)
def test_our_structured_is_read_by_sdk_legacy(event: Event) -> None:
    sdk = legacy_http.from_http(*event.to_http("structured"))
    assert Event.from_sdk(sdk) == event


@given(sdk_binary_events)
def test_sdk_legacy_binary_is_read_by_us(event: Event) -> None:
    headers, body = legacy_conversion.to_binary(event.to_sdk(api="legacy"))
    assert Event.from_http(headers, body) == event


def test_sdk_binary_bytes_and_text_interop() -> None:
    event = make(data=b"\x89PNG\xff", datacontenttype="image/png", extensions={"k": "v"})
    message = core_http.to_binary_event(event.to_sdk())
    assert Event.from_http(message.headers, message.body) == event
    headers, body = event.to_http()
    sdk = core_http.from_http_event(core_http.HTTPMessage(headers=headers, body=body))
    assert sdk.get_data() == b"\x89PNG\xff"
    assert sdk.get_extension("k") == "v"


# -- laziness -----------------------------------------------------------------------


def test_importing_the_library_does_not_import_the_sdk() -> None:
    code = (
        "import sys, eventpatterns.core; "
        "e = eventpatterns.core.Event(type='t', source='/s'); e.to_http(); "
        "print(sorted(m for m in sys.modules if m.startswith('cloudevents')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[2] / "src")},
    )  # fmt: skip
    assert json.loads(out.stdout.replace("'", '"')) == []


EXTRAS = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]


def test_the_cloudevents_extra_installs_the_2x_sdk() -> None:
    assert EXTRAS["cloudevents"] == ["cloudevents>=2"]
    assert "cloudevents" in EXTRAS["all"][0]


def test_missing_sdk_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("cloudevents"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
    event = make()
    with pytest.raises(
        MissingDependency, match=r"pip install 'eventpatterns\[cloudevents\]'"
    ) as info:
        event.to_sdk(api="core")
    assert info.value.extra in EXTRAS  # the hint names an extra that exists
    with pytest.raises(MissingDependency, match=r"cloudevents\.v1\.http or cloudevents\.http"):
        event.to_sdk()


def test_sdk_1x_module_layout_is_used_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    # SDK 1.x has no cloudevents.core and keeps the legacy API at cloudevents.http.
    monkeypatch.setitem(sys.modules, "cloudevents.core.v1.event", None)
    monkeypatch.setitem(sys.modules, "cloudevents.v1.http", None)
    monkeypatch.setitem(sys.modules, "cloudevents.http", legacy_http)
    sdk = make(data=[1]).to_sdk()
    assert isinstance(sdk, legacy_http.CloudEvent)
    assert Event.from_sdk(sdk) == make(data=[1])

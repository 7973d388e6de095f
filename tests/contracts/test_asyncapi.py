"""JSON Schemas and the AsyncAPI 3.0 document, validated against the official schema."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from eventpatterns.cli import main
from eventpatterns.contracts import asyncapi_document, json_schemas
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import ConfigurationError

from .sample_events import REGISTRY, OrderPlaced, OrderShipped

ROOT = Path(__file__).resolve().parents[2]
SPECS = "@asyncapi/specs@6.11.1"
CACHE = ROOT / ".cache" / "asyncapi-specs-6.11.1.json"


@pytest.fixture(scope="session")
def asyncapi_schema() -> dict[str, Any]:
    """The official AsyncAPI 3.0.0 JSON Schema, from the npm package (cached)."""
    if not CACHE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is needed to fetch the official AsyncAPI schema")
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "pack", SPECS, "--silent", "--pack-destination", str(CACHE.parent)],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"npm pack {SPECS} failed: {done.stderr[-500:]}")
        tarball = CACHE.parent / done.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/schemas/3.0.0.json")
            assert member is not None
            CACHE.write_bytes(io.BytesIO(member.read()).getvalue())
        tarball.unlink()
    schema: dict[str, Any] = json.loads(CACHE.read_text(encoding="utf-8"))
    return schema


def problems(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_document_is_valid_asyncapi_3(asyncapi_schema: dict[str, Any]) -> None:
    document = asyncapi_document(
        REGISTRY,
        title="Shop",
        version="2.1.0",
        description="What the shop publishes.",
        groups={"billing": [OrderPlaced], "shipping": [OrderPlaced, OrderShipped]},
        gateway=[OrderShipped],
    )
    assert problems(document, asyncapi_schema) == []
    assert document["asyncapi"] == "3.0.0"
    placed = "com.example.order.placed"
    assert document["channels"][placed]["address"] == placed
    message = document["components"]["messages"][placed]
    assert message["headers"]["properties"]["type"]["const"] == placed
    assert message["summary"] == "An order was placed."
    schemas = document["components"]["schemas"]
    assert schemas[placed]["properties"]["ship_to"] == {"$ref": "#/components/schemas/Address"}
    assert schemas["Address"]["required"] == ["street", "city"]
    assert set(document["operations"]) == {
        f"publish.{placed}", "publish.com.example.order.shipped",
        f"consume.billing.{placed}", f"consume.shipping.{placed}",
        "consume.shipping.com.example.order.shipped", "gateway.subscribe",
    }  # fmt: skip


def test_the_validation_can_fail(asyncapi_schema: dict[str, Any]) -> None:
    document = asyncapi_document(REGISTRY, title="Shop", version="1")
    del document["info"]["version"]
    document["operations"]["publish.com.example.order.placed"]["action"] = "publish"
    found = problems(document, asyncapi_schema)
    assert any("'version' is a required property" in p for p in found)
    assert len(found) >= 2


def test_groups_and_the_gateway_must_name_declared_types() -> None:
    class Stray(EventModel, type="com.example.stray", registry=EventRegistry()):
        x: int

    with pytest.raises(ConfigurationError, match="Stray, not in the registry"):
        asyncapi_document(REGISTRY, title="t", version="1", groups={"g": [Stray]})
    with pytest.raises(ConfigurationError, match="the gateway"):
        asyncapi_document(REGISTRY, title="t", version="1", gateway=[Stray])


def test_two_nested_models_with_one_name_are_refused() -> None:
    from pydantic import BaseModel

    registry = EventRegistry()

    def declare(type_: str, field_type: type[Any]) -> None:
        class Holder(BaseModel):
            value: field_type  # type: ignore[valid-type]

        Holder.__name__ = "Holder"

        class Typed(EventModel, type=type_, registry=registry):
            holder: Holder

    declare("com.example.a", int)
    declare("com.example.b", str)
    with pytest.raises(ConfigurationError, match="both named 'Holder'"):
        asyncapi_document(registry, title="t", version="1")


def test_json_schemas_by_type() -> None:
    schemas = json_schemas(REGISTRY)
    assert sorted(schemas) == ["com.example.order.placed", "com.example.order.shipped"]
    assert schemas["com.example.order.placed"]["$id"].endswith(":v2")


def test_the_cli_writes_a_file_per_type_and_the_asyncapi_document(
    tmp_path: Path, asyncapi_schema: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = "tests.contracts.sample_events:REGISTRY"
    assert main(["schema", "export", "--registry", registry, "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "com.example.order.placed.v2.schema.json", "com.example.order.shipped.v1.schema.json",
    ]  # fmt: skip
    shipped = json.loads((tmp_path / names[1]).read_text())
    assert shipped["title"] == "com.example.order.shipped"
    args = ["schema", "export", "--registry", registry, "--asyncapi", "--title", "Shop"]
    assert main([*args, "--out", str(tmp_path / "api")]) == 0
    document = json.loads((tmp_path / "api" / "asyncapi.json").read_text())
    assert problems(document, asyncapi_schema) == []
    capsys.readouterr()
    assert main(["schema", "export", "--registry", registry]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(printed) == ["com.example.order.placed", "com.example.order.shipped"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--module", "tests.contracts.no_such_module"], "cannot import 'tests.contracts.no_such"),
        (["--registry", "tests.contracts.sample_events:nope"], "cannot load the registry"),
        (["--registry", "tests.contracts.sample_events:Address"], "is not an EventRegistry"),
        (["--registry", "tests.contracts.empty_registry:REGISTRY"], "no event types are declared"),
    ],
)
def test_cli_failures_are_one_line_and_status_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "export", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1
    assert err.startswith("eventpatterns schema: error:")


def test_the_cli_reports_an_unwritable_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    registry = "tests.contracts.sample_events:REGISTRY"
    assert main(["schema", "export", "--registry", registry, "--out", str(blocker / "d")]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_the_document_shown_in_the_docs_is_the_one_the_example_builds(
    asyncapi_schema: dict[str, Any],
) -> None:
    import re

    page = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- asyncapi-example -->\n```json\n(.*?)\n```", page, re.S)
    assert match is not None
    shown = json.loads(match.group(1))
    shop = EventRegistry("shop")

    class OrderPlaced(EventModel, type="com.example.order.placed", registry=shop):
        """An order was placed."""

        order_id: str
        total_cents: int

    built = asyncapi_document(
        shop, title="Shop", version="2.1.0", groups={"billing": [OrderPlaced]},
        gateway=[OrderPlaced],
    )  # fmt: skip
    assert shown == built
    assert problems(shown, asyncapi_schema) == []

"""The documentation site says what the code does: reference pages and the guarantees table.

Two ways the site drifts from the code without a code block failing: a public package
with no API reference page, and a guarantee in ``docs/backends.md`` that a backend's
``capabilities`` object no longer declares. Both are checked here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from eventpatterns.bus import Capabilities

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_packages() -> list[str]:
    """The PACKAGES list of tests/test_public_api.py (read, not imported: one list)."""
    tree = ast.parse((ROOT / "tests" / "test_public_api.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "PACKAGES" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(name) for name in value]
    raise AssertionError("tests/test_public_api.py defines no PACKAGES list")


def _mkdocs_nav() -> set[str]:
    """Every page mkdocs.yml's nav names (its ``- Title: page.md`` lines)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return set(re.findall(r"^\s*- (?:[^:\n]+: )?([\w./-]+\.md)\s*$", text, re.M))


def _documented_modules() -> dict[str, str]:
    """Module name -> the reference page (relative to docs/) rendering it with ``:::``."""
    found: dict[str, str] = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        for name in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M):
            found.setdefault(name, page.relative_to(DOCS).as_posix())
    return found


def test_every_public_package_has_a_reference_page_in_the_nav() -> None:
    documented = _documented_modules()
    nav = _mkdocs_nav()
    missing = [name for name in _public_packages() if name not in documented]
    assert missing == [], f"no docs/reference page renders (::: name) {missing}"
    off_nav = sorted({documented[name] for name in _public_packages()} - nav)
    assert off_nav == [], f"reference pages missing from the mkdocs.yml nav: {off_nav}"


# -- the guarantees table of docs/backends.md -------------------------------------------

CAPABILITY_ROW = re.compile(r"^\| bus: `(\w+)` \*\(capability\)\* \|(.*)\|\s*$", re.M)
FIRST_VALUE = re.compile(r"`([^`]+)`")


def _value(cell: str) -> object:
    """The first backticked value of a cell, as Python: `total`, `True`, `None`, `300`."""
    match = FIRST_VALUE.search(cell)
    assert match, f"the cell {cell.strip()!r} starts with no `value`"
    text = match[1]
    if text in {"True", "False", "None"}:
        return {"True": True, "False": False, "None": None}[text]
    if re.fullmatch(r"\d+", text):
        return int(text)
    return text


def _table() -> dict[str, list[object]]:
    """Capability name -> its documented values for memory, Redis, AWS."""
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    rows: dict[str, list[object]] = {}
    for name, cells in CAPABILITY_ROW.findall(text):
        values = [_value(cell) for cell in cells.split("|")]
        assert len(values) == 3, f"the {name} row has {len(values)} backend cells, not 3"
        rows[name] = values
    return rows


def _backends_with_defaults() -> list[Capabilities]:
    pytest.importorskip("redis")
    pytest.importorskip("aiobotocore")
    from eventpatterns.backends.aws import AWSBusBackend
    from eventpatterns.backends.memory import MemoryBusBackend
    from eventpatterns.backends.redis import RedisBusBackend

    # Building a backend connects to nothing: these are the declared defaults.
    return [
        MemoryBusBackend().capabilities,
        RedisBusBackend("redis://127.0.0.1:6379/0").capabilities,
        AWSBusBackend(region="eu-west-1").capabilities,
    ]


def test_guarantees_table_lists_every_capability() -> None:
    fields = list(Capabilities.__dataclass_fields__)
    assert sorted(_table()) == sorted(fields)


def test_guarantees_table_matches_the_capabilities_objects() -> None:
    table = _table()
    declared = _backends_with_defaults()
    for name, documented in table.items():
        actual = [getattr(capabilities, name) for capabilities in declared]
        # A float window of 300.0 is documented as `300`.
        normalised = [int(v) if isinstance(v, float) and v.is_integer() else v for v in actual]
        assert documented == normalised, f"docs/backends.md row {name}: {documented} != {actual}"


def _default(cls: type, parameter: str) -> object:
    return inspect.signature(cls).parameters[parameter].default


def test_guarantees_table_defaults_match_the_constructors() -> None:
    pytest.importorskip("redis")
    pytest.importorskip("aiobotocore")
    from eventpatterns.backends.aws import AWSBusBackend, DynamoDeviceRegistry, S3BlobStore
    from eventpatterns.backends.filesystem import FileBlobStore
    from eventpatterns.backends.memory import (
        MemoryBlobStore,
        MemoryBusBackend,
        MemoryDeviceRegistry,
    )
    from eventpatterns.backends.redis import RedisBusBackend, RedisDeviceRegistry

    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    history = re.search(r"^\| bus: `history` .*$", text, re.M)
    assert history is not None
    assert history[0].count("`max_entries` (100,000)") == 2
    assert _default(MemoryBusBackend, "max_entries") == 100_000
    assert _default(RedisBusBackend, "max_entries") == 100_000
    assert "`window` (10,000)" in history[0]
    assert _default(AWSBusBackend, "window") == 10_000
    blobs = re.search(r"^\| blobs: largest blob .*$", text, re.M)
    assert blobs is not None
    cells = [cell.strip() for cell in blobs[0].strip("|").split("|")][1:]
    assert cells == ["64 MiB", "—", "1 GiB (`FileBlobStore`: 1 GiB)"]
    assert _default(MemoryBlobStore, "max_size") == 64 * 2**20
    assert _default(S3BlobStore, "max_size") == _default(FileBlobStore, "max_size") == 2**30
    assert "`max_devices` per user (default 50)" in text
    for registry in (MemoryDeviceRegistry, RedisDeviceRegistry, DynamoDeviceRegistry):
        assert _default(registry, "max_devices") == 50


# -- guides: working code first, then the knobs ----------------------------------------

#: The guide of each pattern, and the task pages around them.
GUIDES = ["bus.md", "filters.md", "realtime.md", "jobs.md", "push.md", "bff.md"]
GUIDES += ["migration.md", "deployment.md"]


@pytest.mark.parametrize("page", GUIDES)
def test_guides_open_with_working_code(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    first_block = text.find("```python\n")
    assert first_block >= 0, f"{page} has no runnable example"
    sections = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    before = [start for start in sections if start < first_block]
    assert len(before) <= 1, f"{page}: the first example comes after {len(before)} sections"
    assert page in _mkdocs_nav(), f"{page} is not in the mkdocs.yml nav"


#: Libraries whose usage migration.md shows for comparison, in ``py`` fences (not run).
PEERS = ("broadcaster", "socketio", "celery", "AsyncResult", "arq")


def test_migration_compares_peer_code_with_runnable_code() -> None:
    text = (DOCS / "migration.md").read_text(encoding="utf-8")
    peers = re.findall(r"^```py\n(.*?)^```", text, re.M | re.S)
    ours = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert len(peers) >= 4
    assert len(ours) >= len(peers)
    for code in peers:
        # A ``py`` block is the other library's code, never ours left unexecuted.
        assert "eventpatterns" not in code, code
        assert any(peer in code for peer in PEERS), code
    for code in ours:
        assert "from eventpatterns" in code, code
        assert "anyio.run(" in code, code


# -- the protocol reference of docs/realtime-protocol.md ----------------------------------


def _section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_protocol_reference_lists_exactly_the_error_codes() -> None:
    from eventpatterns.realtime import ErrorCode

    rows = re.findall(r"^\| `(\w+)` \|", _section("realtime-protocol.md", "Error codes"), re.M)
    assert sorted(rows) == sorted(code.value for code in ErrorCode)


def test_protocol_reference_lists_exactly_the_close_codes() -> None:
    from eventpatterns.realtime import CloseCode

    section = _section("realtime-protocol.md", "Close codes")
    rows = {int(n): name for n, name in re.findall(r"^\| (\d{4}) \| `(\w+)` \|", section, re.M)}
    assert rows == {code.value: code.name for code in CloseCode}

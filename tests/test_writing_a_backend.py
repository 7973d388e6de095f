"""The backend built on docs/writing-a-backend.md passes the conformance suites, as shown there.

The page's first code block is the backend, its second the test class; both are run
as written (the second is exec'd with the first's names in scope, as its comment says).
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from eventpatterns.bus import BusBackend
from eventpatterns.errors import ConfigurationError
from eventpatterns.testing import BusBackendSuite

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-backend.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)

# The backend, as a real module (dataclasses and pickling want one).
list_backend = types.ModuleType("list_backend")
list_backend.__file__ = f"{PAGE}:block0"
sys.modules["list_backend"] = list_backend
exec(compile(BLOCKS[0], f"{PAGE}:block0", "exec"), list_backend.__dict__)
ListBusBackend = list_backend.ListBusBackend

_suite_namespace: dict[str, object] = {"ListBusBackend": ListBusBackend, "__name__": __name__}
exec(compile(BLOCKS[1], f"{PAGE}:block1", "exec"), _suite_namespace)
TestListBusBackend = _suite_namespace["TestListBusBackend"]


def test_the_page_has_the_backend_and_its_test_class() -> None:
    assert len(BLOCKS) == 2
    assert isinstance(TestListBusBackend, type)
    assert issubclass(TestListBusBackend, BusBackendSuite)
    assert TestListBusBackend.anyio_backends == ("asyncio", "trio")


def test_the_backend_is_short_and_complete() -> None:
    lines = [line for line in BLOCKS[0].splitlines() if line.strip()]
    assert len(lines) < 260  # one page, not a framework
    assert isinstance(ListBusBackend(), BusBackend)
    assert isinstance(ListBusBackend.from_url("list://"), ListBusBackend)
    with pytest.raises(ConfigurationError):
        ListBusBackend.from_url("memory://")

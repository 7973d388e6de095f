"""Each package's public surface is exactly its ``__all__``, documented, and light to import."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PACKAGES = [
    "eventpatterns",
    "eventpatterns.core",
    "eventpatterns.errors",
    "eventpatterns.bus",
    "eventpatterns.contracts",
    "eventpatterns.filters",
    "eventpatterns.observability",
    "eventpatterns.observability.asgi",
    "eventpatterns.jobs",
    "eventpatterns.jobs.asgi",
    "eventpatterns.push",
    "eventpatterns.push.asgi",
    "eventpatterns.bff",
    "eventpatterns.bff.asgi",
    "eventpatterns.realtime",
    "eventpatterns.realtime.asgi",
    "eventpatterns.backends",
    "eventpatterns.backends.memory",
    "eventpatterns.backends.redis",
    "eventpatterns.backends.filesystem",
    "eventpatterns.backends.aws",
    "eventpatterns.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_the_public_surface(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value) and attr != "annotations"
    }
    assert public - exported == set(), "public names missing from __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_callables_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"{name}.{attr} has no docstring"


def test_contract_names_other_parts_rely_on() -> None:
    from eventpatterns import bus, filters

    for attr in ("compile", "Matcher", "PatternIndex", "explain"):
        assert attr in filters.__all__
    for attr in ("EventBus", "BusBackend", "Subscription", "Consumer", "Gap", "DeadLetter"):
        assert attr in bus.__all__


def test_errors_inherit_the_builtins_callers_catch() -> None:
    from eventpatterns import errors

    expected = {
        "InvalidEvent": ValueError,
        "InvalidPattern": ValueError,
        "InvalidPosition": ValueError,
        "ConfigurationError": ValueError,
        "MissingDependency": ImportError,
        "PositionExpired": LookupError,
        "GroupNotFound": LookupError,
        "DeadLetterNotFound": LookupError,
        "EventTooLarge": ValueError,
        "BusClosed": RuntimeError,
        "BackendUnavailable": ConnectionError,
        "AuthenticationFailed": PermissionError,
        "Forbidden": PermissionError,
        "ProtocolViolation": ValueError,
        "LimitExceeded": ValueError,
    }
    for attr, builtin in expected.items():
        cls = getattr(errors, attr)
        assert issubclass(cls, errors.EventPatternsError)
        assert issubclass(cls, builtin), f"{attr} should be a {builtin.__name__}"
    for attr in errors.__all__:  # the tree in the module docstring names every error
        assert attr in (errors.__doc__ or ""), f"{attr} is missing from the tree in errors.py"


def test_import_eventpatterns_stays_light() -> None:
    heavy = [
        "redis",
        "aiobotocore",
        "botocore",
        "cloudevents",
        "pytest",
        "hypothesis",
        "httpx",
        "websockets",
        "prometheus_client",
        "opentelemetry",
    ]
    code = (
        "import sys, eventpatterns, eventpatterns.bus, eventpatterns.filters,"
        " eventpatterns.observability;"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing eventpatterns loaded: {out.stdout.strip()}"


def test_import_realtime_loads_no_optional_dependency() -> None:
    heavy = ["jwt", "cryptography", "httpx", "starlette", "uvicorn"]
    heavy = ["starlette", "jwt", "cryptography", "httpx", "websockets", "redis", "uvicorn"]
    code = (
        "import sys, eventpatterns.realtime;"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", (
        f"importing eventpatterns.realtime loaded: {out.stdout.strip()}"
    )

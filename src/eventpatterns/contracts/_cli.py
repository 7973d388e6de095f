"""``eventpatterns schema export``: write the declared event types' schemas.

``--module`` imports the modules that declare the types (``EventModel`` subclasses
register themselves on import); without ``--out`` the result is printed as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..core import DEFAULT_REGISTRY, EventRegistry
from ._asyncapi import asyncapi_document

__all__ = ["add_parser"]

_FILE = re.compile(r"[^A-Za-z0-9_.\-]")


class SchemaUsageError(Exception):
    """Bad input: one line on standard error, exit status 2."""


def _registry(name: str | None) -> EventRegistry:
    if name is None:
        return DEFAULT_REGISTRY
    module_name, _, attr = name.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr or "registry")
    except (ImportError, AttributeError) as exc:
        raise SchemaUsageError(f"cannot load the registry {name!r}: {exc}") from exc
    if not isinstance(found, EventRegistry):
        raise SchemaUsageError(f"{name!r} is not an EventRegistry")
    return found


def _export(args: argparse.Namespace) -> int:
    sys.path.insert(0, ".")  # like python -m: modules of the current directory import
    for module in args.module:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the user's module: say which and why, no traceback
            raise SchemaUsageError(
                f"cannot import {module!r}: {type(exc).__name__}: {exc}"
            ) from exc
    registry = _registry(args.registry)
    if not len(registry):
        raise SchemaUsageError(
            "no event types are declared; name the modules that declare them with --module"
        )
    documents: dict[str, Any] = {
        f"{_FILE.sub('_', m.event_type)}.v{m.event_version}.schema.json": m.data_schema()
        for m in registry
    }
    if args.asyncapi:
        documents = {
            "asyncapi.json": asyncapi_document(registry, title=args.title, version=args.version)
        }
    if args.out is None:
        body = next(iter(documents.values())) if args.asyncapi else {
            m.event_type: m.data_schema() for m in registry
        }  # fmt: skip
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():
            (out / name).write_text(
                json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    except OSError as exc:
        raise SchemaUsageError(f"cannot write to {str(out)!r}: {exc.strerror or exc}") from exc
    for name in documents:
        print(out / name)
    return 0


def add_parser(commands: Any) -> None:
    """Add the ``schema`` command to the command line's subparsers."""
    schema = commands.add_parser(
        "schema",
        help="export the declared event types' JSON Schemas or an AsyncAPI 3.0 document",
        description="Write the schemas of the event types the named modules declare.",
    )
    actions = schema.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write JSON Schemas (or --asyncapi)")
    export.add_argument(
        "--module", action="append", default=[], metavar="MODULE",
        help="a module that declares event types (repeat for several)",
    )  # fmt: skip
    export.add_argument(
        "--registry", metavar="MODULE:ATTR", help="an EventRegistry other than the default"
    )
    export.add_argument("--asyncapi", action="store_true", help="write an AsyncAPI 3.0 document")
    export.add_argument("--title", default="Events", help="the AsyncAPI info.title")
    export.add_argument("--version", default="1.0.0", help="the AsyncAPI info.version")
    export.add_argument("--out", metavar="DIR", help="write files here (default: print JSON)")
    export.set_defaults(handler=_export)

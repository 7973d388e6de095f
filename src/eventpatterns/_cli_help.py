"""The examples in ``--help`` of the commands that do not carry their own epilog.

``serve``, ``test-pattern``, ``push`` and ``schema`` are defined in ``cli`` and
``contracts._cli``; their examples are added here once the parser is built, so that
the parser definitions stay short (and the ``serve`` block stays the few lines other
changes touch).
"""

from __future__ import annotations

import argparse

__all__ = ["EXAMPLES", "add_examples"]

#: Examples for the ``--help`` of the commands ``cli`` and ``contracts._cli`` define.
EXAMPLES = {
    "eventpatterns": (
        "eventpatterns serve",
        "eventpatterns publish --type order.placed --source /shop --data '{\"total\": 250}'",
        'eventpatterns listen --pattern \'{"type": ["order.placed"]}\'',
        "eventpatterns COMMAND --help",
    ),
    "eventpatterns test-pattern": (
        'eventpatterns test-pattern \'{"source": ["shop"]}\' \'{"source": "shop"}\'',
        "eventpatterns test-pattern @pattern.json @event.json --explain",
        "cat event.json | eventpatterns test-pattern @pattern.json @- --json",
    ),
    "eventpatterns serve": (
        "eventpatterns serve",
        "eventpatterns serve --port 0 --bus redis://127.0.0.1:6379/0",
        "eventpatterns serve --jobs myapp.jobs:setup --blobs ./blobs",
        "eventpatterns serve --host 0.0.0.0 --jwt-secret @secret.txt --audience myapp",
    ),
    "eventpatterns push": ("eventpatterns push vapid-keys --json",),
    "eventpatterns push vapid-keys": (
        "eventpatterns push vapid-keys",
        "eventpatterns push vapid-keys --format raw --json > vapid.json",
    ),
    "eventpatterns schema": ("eventpatterns schema export --module myapp.events --out schemas/",),
    "eventpatterns schema export": (
        "eventpatterns schema export --module myapp.events",
        "eventpatterns schema export --module myapp.events --asyncapi --title Shop --out docs/",
    ),
}


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Give each parser without an epilog its examples from :data:`EXAMPLES`."""
    examples = EXAMPLES.get(parser.prog)
    if parser.epilog is None and examples is not None:
        parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:  # argparse keeps its subparsers there
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                add_examples(child)

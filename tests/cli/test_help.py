"""Every command's ``--help`` ends with examples; each example names a real command."""

from __future__ import annotations

import argparse

import pytest

from eventpatterns.cli import _parser, main


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += _parsers(child)
    return found


def test_every_parser_has_examples_of_itself() -> None:
    parsers = _parsers(_parser())
    names = {p.prog for p in parsers}
    assert {"eventpatterns publish", "eventpatterns jobs watch", "eventpatterns dlq list"} <= names
    assert len(parsers) >= 20
    for parser in parsers:
        epilog = parser.epilog or ""
        assert "example" in epilog, parser.prog
        examples = [line.strip() for line in epilog.splitlines() if line.startswith("  ")]
        assert any(line.startswith(parser.prog) for line in examples), parser.prog


@pytest.mark.parametrize("command", [["jobs"], ["dlq"], ["push"], ["schema"]])
def test_a_group_without_an_action_is_a_usage_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    assert "usage:" in capsys.readouterr().err

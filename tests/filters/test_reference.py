"""The tree matcher against a brute-force reference of event-ruler's semantics.

The reference flattens the event into fields (path, value, array membership), the
way event-ruler does, and searches for one field per condition such that every two
chosen fields agree on the element of each array of objects they both sit in. The
index is checked against the matcher elsewhere; this checks the matcher itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from eventpatterns import filters
from eventpatterns.filters._model import Conjunction, Leaf

from .test_properties import events, patterns

Field = tuple[tuple[str, ...], Any, dict[tuple[Any, ...], int]]


def _fields(event: dict[str, Any]) -> list[Field]:
    out: list[Field] = []

    def walk(
        value: Any,
        path: tuple[str, ...],
        member: dict[tuple[Any, ...], int],
        where: tuple[Any, ...],
    ) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                # A field is named by its keys joined with dots (event-ruler).
                walk(item, (*path, *key.split(".")), member, (*where, key))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    walk(item, path, {**member, where: i}, (*where, i))
                else:
                    walk(item, path, member, (*where, i))
        elif path:
            out.append((path, value, member))

    walk(event, (), {}, ())
    return out


def _consistent(a: dict[tuple[Any, ...], int], b: dict[tuple[Any, ...], int]) -> bool:
    return all(b[k] == v for k, v in a.items() if k in b)


def _reference_branch(branch: Conjunction, fields: list[Field]) -> bool:
    leaves: list[Leaf] = list(branch.leaves)

    def options(leaf: Leaf) -> list[dict[tuple[Any, ...], int] | None]:
        here = [f for f in fields if f[0] == leaf.path]
        opts: list[dict[tuple[Any, ...], int] | None] = []
        if leaf.absent_ok and not here:
            opts.append(None)  # satisfied by absence: no field needed
        opts.extend(member for _, value, member in here if leaf.test_value(value))
        return opts

    def search(i: int, chosen: list[dict[tuple[Any, ...], int]]) -> bool:
        if i == len(leaves):
            return True
        for member in options(leaves[i]):
            if member is None:
                if search(i + 1, chosen):
                    return True
            elif all(_consistent(member, c) for c in chosen) and search(i + 1, [*chosen, member]):
                return True
        return False

    return search(0, [])


def reference_matches(pattern: Any, event: dict[str, Any]) -> bool:
    fields = _fields(event)
    return any(_reference_branch(b, fields) for b in filters.compile(pattern).branches)


@settings(max_examples=300)
@given(patterns, events)
def test_matcher_agrees_with_reference(pattern: Any, event: dict[str, Any]) -> None:
    assert filters.compile(pattern).matches(event) is reference_matches(pattern, event)


def test_reference_agrees_with_the_corpus() -> None:
    from .corpus import MATCH_CASES

    disagreements = [
        name
        for name, pattern, event, expected in MATCH_CASES
        if isinstance(event, dict) and reference_matches(pattern, event) is not expected
    ]
    assert disagreements == []

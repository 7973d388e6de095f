"""``explain``: why an event did or did not match a pattern."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._matcher import Matcher, as_event_dict
from ._matcher import compile as compile_pattern
from ._model import (
    MISSING,
    AnythingBut,
    Conjunction,
    Exists,
    Leaf,
    brief,
    leaf_values,
    occurrences_at,
)
from ._parse import field_path

__all__ = ["BranchExplanation", "Check", "Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class Check:
    """One field condition of a pattern, tested against the event.

    Attributes:
        path: JSON path of the field in the event, e.g. ``"$.detail.price"``.
        operators: The operator of each alternative (``"equals"`` for a bare value).
        expected: The alternatives as written in the pattern.
        seen: The leaf values found at ``path`` (empty: the field is missing).
        matched: Whether an alternative accepted the field.
        reason: Why, in words.
    """

    path: str
    operators: tuple[str, ...]
    expected: tuple[Any, ...]
    seen: tuple[Any, ...]
    matched: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "path": self.path,
            "operators": list(self.operators),
            "expected": list(self.expected),
            "seen": list(self.seen),
            "matched": self.matched,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class BranchExplanation:
    """One branch of the pattern (``$or`` expanded): every check must pass.

    Attributes:
        matched: Whether the event satisfies the branch.
        checks: The branch's field conditions, failed ones first.
        reason: A one-line summary.
    """

    matched: bool
    checks: tuple[Check, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an event matched a pattern or did not.

    Attributes:
        matched: The verdict; always equal to ``compile(pattern).matches(event)``.
        branches: One entry per branch; the event matches when any branch does.
    """

    matched: bool
    branches: tuple[BranchExplanation, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        """Every failed check, across branches."""
        return tuple(c for b in self.branches for c in b.checks if not c.matched)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "matched": self.matched,
            "branches": [
                {
                    "matched": b.matched,
                    "reason": b.reason,
                    "checks": [c.to_dict() for c in b.checks],
                }
                for b in self.branches
            ],
        }

    def __str__(self) -> str:
        lines = ["match" if self.matched else "no match"]
        many = len(self.branches) > 1
        for n, branch in enumerate(self.branches, 1):
            indent = "  "
            if many:
                lines.append(f"  branch {n}/{len(self.branches)}: {branch.reason}")
                indent = "    "
            elif not branch.checks or (
                branch.checks and not self.matched and all(c.matched for c in branch.checks)
            ):
                lines.append(f"  {branch.reason}")
            for check in branch.checks:
                mark = "ok  " if check.matched else "FAIL"
                expected = ", ".join(_dump(e) for e in check.expected)
                lines.append(f"{indent}{mark} {check.path} [{expected}]: {check.reason}")
        return "\n".join(lines)


def explain(pattern: object, event: object) -> Explanation:
    """Explain why ``event`` does or does not match ``pattern``.

    Args:
        pattern: A pattern (anything :func:`~eventpatterns.filters.compile` takes)
            or a compiled :class:`~eventpatterns.filters.Matcher`.
        event: A JSON-like ``dict`` or an :class:`~eventpatterns.core.Event`.

    Returns:
        The verdict and, for every field condition, the values seen and why they
        passed or failed.

    Raises:
        InvalidPattern: The pattern is malformed.

    Example:
        >>> e = explain({"detail": {"state": ["running"]}}, {"detail": {"state": "stopped"}})
        >>> e.matched, e.failures[0].path, e.failures[0].seen
        (False, '$.detail.state', ('stopped',))
    """
    matcher = pattern if isinstance(pattern, Matcher) else compile_pattern(pattern)
    doc = as_event_dict(event)
    # Expanded $or branches share their leaves: check each leaf once.
    seen: dict[int, Check] = {}
    branches = tuple(_branch(b, doc, seen) for b in matcher.branches)
    return Explanation(any(b.matched for b in branches), branches)


def _branch(
    branch: Conjunction, doc: Mapping[str, Any], seen: dict[int, Check]
) -> BranchExplanation:
    checks = []
    for leaf in branch.leaves:
        check = seen.get(id(leaf))
        if check is None:
            check = seen[id(leaf)] = _check(leaf, doc)
        checks.append(check)
    checks.sort(key=lambda c: c.matched)
    matched = branch.match(doc)
    failed = [c for c in checks if not c.matched]
    if matched:
        reason = "matched: every condition holds" if checks else "matched: the pattern is empty"
    elif failed:
        reason = f"failed: {len(failed)} of {len(checks)} conditions do not hold"
    else:
        reason = (
            "failed: every condition holds somewhere, but conditions below an array of"
            " objects must all hold in the same element"
        )
    return BranchExplanation(matched, tuple(checks), reason)


def _check(leaf: Leaf, doc: Mapping[str, Any]) -> Check:
    # Each value found at the path is tested as the tree tests it (an array as an
    # array: AppSync's contains tests whole elements); array consistency aside.
    found = [(o, leaf_values(o)) for o in occurrences_at(doc, leaf.path)]
    found = [(o, v) for o, v in found if v]
    values = [v for _, vs in found for v in vs]
    matched = any(leaf.check(o, doc) for o, _ in found) if found else leaf.check(MISSING, doc)
    path = "$"
    for key in leaf.path:
        path = field_path(path, key)
    alternatives = leaf.alternatives
    return Check(
        path=path,
        operators=tuple(a.op for a in alternatives),
        expected=tuple(a.spec for a in alternatives),
        seen=tuple(values),
        matched=matched,
        reason=_reason(leaf, values, matched),
    )


def _reason(leaf: Leaf, values: list[Any], matched: bool) -> str:
    if not values:
        if matched:
            return "the field is absent, as exists: false asks"
        note = ""
        if any(isinstance(a, AnythingBut) for a in leaf.alternatives):
            note = "; anything-but never matches a missing field"
        return "the field is missing (objects, {} and [] are not values)" + note
    if not matched:
        if leaf.absent_ok and len(leaf.alternatives) == 1:
            return f"the field is present ({_dump_values(values)}) but exists: false asks it absent"
        return f"no alternative accepts {_dump_values(values)}"
    for alt in leaf.alternatives:
        if isinstance(alt, Exists):
            if alt.present:
                return f"the field is present ({_dump_values(values)})"
            continue
        for value in values:
            if alt.test(value):
                return f"{_dump(value)} matches {_dump(alt.spec)}"
    return "matched"  # pragma: no cover - matched implies an alternative accepted


def _dump_values(values: list[Any]) -> str:
    return ", ".join(_dump(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")


def _dump(value: object) -> str:
    return brief(value, 120)

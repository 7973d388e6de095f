"""How one event type is shaped for one frontend: field selection, renaming, forms.

A :class:`Projection` is pure data (a frozen pydantic model) applied by
:meth:`Projection.apply` to an event's ``data``: plain synchronous code, no I/O.

Hostile input has one defined behaviour each, never a crash:

* a selected field the event does not carry is **left out** of the result (an event
  of an older version, a producer's bug), and :attr:`Projection.required` names the
  fields whose absence makes the whole event *not shown* instead;
* data that is not a JSON object projects to ``{}``;
* a path only walks the segments it names (at most :data:`MAX_DEPTH`), so deeply
  nested data costs nothing beyond them;
* string values longer than ``max_string`` are cut to that length with ``…``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigurationError

__all__ = ["MAX_DEPTH", "Localizer", "Projection", "as_configuration_error", "parse_fields"]

#: Most segments in one field path (``a.b.c``).
MAX_DEPTH = 8

#: A localisation hook: ``(message key, locale) -> text``; return the key when unknown.
Localizer = Callable[[str, str], str]

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_PATH = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT}){{0,{MAX_DEPTH - 1}}}$")
_NAME = re.compile(rf"^{_SEGMENT}$")
_MISSING = object()


def as_configuration_error(what: str, exc: ValidationError) -> ConfigurationError:
    """Return pydantic's error as ours: our own raised inside a validator, else a summary."""
    first = exc.errors()[0]  # a ValidationError holds at least one error
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, ConfigurationError):
        return inner
    where = ".".join(str(part) for part in first["loc"])
    return ConfigurationError(f"invalid {what} {where}: {first['msg']}")


def _check_path(path: object, what: str) -> str:
    if not isinstance(path, str) or not _PATH.match(path):
        raise ConfigurationError(
            f"{what} {path!r:.80} is not a field path (dotted names, at most"
            f" {MAX_DEPTH} segments, each a letter or _ then letters, digits or _)"
        )
    return path


def parse_fields(spec: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """Parse a field list such as ``"order_id, total_cents as total, customer.name"``.

    Args:
        spec: Comma-separated items, each a field path, optionally ``as`` a new name.

    Returns:
        The selected paths in order, and the renames (path -> output name).

    Raises:
        ConfigurationError: An item is empty or not a path, a name is not an
            identifier, or two items produce the same output name.
    """
    if not isinstance(spec, str):
        raise ConfigurationError(f"a field list is a string, got {type(spec).__name__}")
    fields: list[str] = []
    rename: dict[str, str] = {}
    outputs: set[str] = set()
    for position, item in enumerate(spec.split(","), 1):
        words = item.split()
        if len(words) == 1:
            path, name = words[0], None
        elif len(words) == 3 and words[1] == "as":
            path, name = words[0], words[2]
        else:
            raise ConfigurationError(
                f"item {position} of the field list, {item.strip()!r:.80}, is not"
                " 'path' or 'path as name'"
            )
        _check_path(path, f"item {position} of the field list:")
        if name is not None and not _NAME.match(name):
            raise ConfigurationError(f"item {position}: {name!r:.80} is not a field name")
        output = name or path
        if output in outputs:
            raise ConfigurationError(f"item {position}: the output name {output!r} is repeated")
        outputs.add(output)
        fields.append(path)
        if name is not None:
            rename[path] = name
    return tuple(fields), rename


def _get(data: Any, path: str) -> Any:
    value = data
    for segment in path.split("."):
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(segment, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: max(limit - 1, 0)] + "…"
    return value


class Projection(BaseModel):
    """The shape of one event type for one profile.

    Attributes:
        fields: The data fields kept, as paths (``customer.name``), in output order;
            ``None`` keeps every top-level field. A dotted path is written flat
            under its output name (``customer.name`` becomes ``"customer.name"``
            unless renamed).
        rename: Output names by path.
        required: Paths without which the event is not shown to this profile at all.
        localize: Paths whose string values are message keys, replaced by the
            localisation hook's text for the connection's locale.
        form: ``rich`` keeps the whole CloudEvents envelope; ``compact`` keeps only
            ``id``, ``type``, ``time`` and the projected data (for mobile), and drops
            ``null`` values.
        max_string: String values longer than this are cut (with ``…``).

    Raises:
        ConfigurationError: A path that is not a path, a rename or localisation of a
            field not selected, or a repeated output name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: tuple[str, ...] | None = None
    rename: Mapping[str, str] = Field(default_factory=dict)
    required: tuple[str, ...] = ()
    localize: tuple[str, ...] = ()
    form: Literal["rich", "compact"] = "rich"
    max_string: int = Field(default=4096, ge=1, le=1_000_000)

    @classmethod
    def parse(cls, spec: str, **options: Any) -> Projection:
        """Return the projection a field list names (see :func:`parse_fields`).

        Args:
            spec: ``"order_id, total_cents as total"``.
            **options: Other attributes (``form="compact"``...).

        Raises:
            ConfigurationError: The list or an option is invalid.
        """
        fields, rename = parse_fields(spec)
        return cls(fields=fields, rename=rename, **options)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise as_configuration_error("projection option", exc) from None

    @field_validator("fields", "required", "localize", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_fields(value)[0]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Projection:
        for path in (*(self.fields or ()), *self.required, *self.localize, *self.rename):
            _check_path(path, "field")
        for name in self.rename.values():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigurationError(f"rename target {name!r:.80} is not a field name")
        selected = set(self.fields) if self.fields is not None else None
        for what, paths in (("renamed", self.rename), ("localized", self.localize)):
            for path in paths:
                if selected is not None and path not in selected:
                    raise ConfigurationError(f"field {path!r} is {what} but not selected")
                if selected is None and "." in path:
                    raise ConfigurationError(
                        f"field {path!r} is {what}: with every field kept, name top-level ones"
                    )
        outputs = [self.rename.get(p, p) for p in (self.fields or ())]
        if len(set(outputs)) != len(outputs):
            raise ConfigurationError(f"the output names {outputs} repeat one")
        return self

    def paths(self) -> set[str]:
        """Return every data path the projection names (for start-up validation)."""
        return {*(self.fields or ()), *self.required, *self.localize, *self.rename}

    def apply(
        self, data: Any, *, locale: str | None = None, localizer: Localizer | None = None
    ) -> dict[str, Any] | None:
        """Return the projected data, or ``None`` when a required field is missing.

        Args:
            data: The event's data (anything: non-objects project to ``{}``).
            locale: The connection's locale, for :attr:`localize`.
            localizer: The localisation hook (without one, keys stay as they are).
        """
        source = data if isinstance(data, dict) else {}
        for path in self.required:
            if _get(source, path) is _MISSING:
                return None
        limit = self.max_string
        out: dict[str, Any] = {}
        if self.fields is None:
            for key, value in source.items():
                out[self.rename.get(key, key)] = _cut(value, limit)
        else:
            for path in self.fields:
                value = _get(source, path)
                if value is not _MISSING:
                    out[self.rename.get(path, path)] = _cut(value, limit)
        if localizer is not None and locale is not None:
            for path in self.localize:
                name = self.rename.get(path, path)
                key = out.get(name)
                if isinstance(key, str):
                    out[name] = _cut(str(localizer(key, locale)), limit)
        if self.form == "compact":
            out = {k: v for k, v in out.items() if v is not None}
        return out

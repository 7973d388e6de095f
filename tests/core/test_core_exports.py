"""The public surface of ``eventpatterns.core``."""

from __future__ import annotations

import eventpatterns.core as core


def test_all_names_are_exported_and_public() -> None:
    assert sorted(core.__all__) == sorted(set(core.__all__))
    for name in core.__all__:
        assert not name.startswith("_")
        value = getattr(core, name)
        if not name.isupper():  # constants are plain strings
            assert value.__module__.startswith("eventpatterns.core")


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name, value in vars(core).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("eventpatterns")
    }
    assert public <= set(core.__all__)

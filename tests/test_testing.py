"""The public test helpers in ``eventpatterns.testing``."""

from __future__ import annotations

import pytest

from eventpatterns.testing import ManualClock


def test_manual_clock_rules() -> None:
    clock = ManualClock(start=10)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    clock.advance(0.5)
    assert clock.time() == 10.5

"""Suite-wide settings: deterministic hypothesis runs under CI."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs the same examples every time (a failure reproduces; a run cannot fail by
# luck) and tolerates a loaded 2-core machine; local runs explore new examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")

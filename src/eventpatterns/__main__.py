"""``python -m eventpatterns``: the ``eventpatterns`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no branch - always run as a module
    sys.exit(main())

"""A writer thread for the tests that match while patterns or ranges change."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def writing(step: Callable[[int], None]) -> Iterator[None]:
    """Run ``step(0)``, ``step(1)``, ... on another thread for the length of the block.

    The thread stops when the block ends; what it raised is raised here then.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        n = 0
        try:
            while not stop.is_set():
                step(n)
                n += 1
        except BaseException as exc:  # pragma: no cover - raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]

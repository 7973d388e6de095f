"""A moto_server whose requests run one at a time, for the DynamoDB stores' tests.

moto applies a conditional write as "read the item, check, write" in Python, in the
thread of the request: two requests at once can interleave between the check and the
write (a delete between them leaves an update writing to a detached item, lost).
DynamoDB applies each item write atomically, which is what the stores rely on, so
their concurrency tests run against moto behind one lock: every request is atomic.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from .conftest import reset, running_moto

_SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

def serial(environ, start_response):
    with lock:
        return list(app(environ, start_response))

run_simple(sys.argv[1], int(sys.argv[2]), serial, threaded=True,
           request_handler=MotoRequestHandler)
"""


@pytest.fixture(scope="session")
def serial_moto(moto_endpoint: str) -> Iterator[str]:
    """Start the serialised moto_server (credentials come from ``moto_endpoint``)."""
    command = [sys.executable, "-c", _SERVER, "127.0.0.1"]
    with running_moto(lambda port: [*command, str(port)], "the serialised moto_server") as url:
        yield url


@pytest.fixture
def dynamo(serial_moto: str) -> str:
    """An empty account on the serialised moto_server; returns its endpoint URL."""
    return reset(serial_moto)

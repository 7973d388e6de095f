"""A moto_server whose requests run one at a time, for the DynamoDB stores' tests.

moto applies a conditional write as "read the item, check, write" in Python, in the
thread of the request: two requests at once can interleave between the check and the
write (a delete between them leaves an update writing to a detached item, lost).
DynamoDB applies each item write atomically, which is what the stores rely on, so
their concurrency tests run against moto behind one lock: every request is atomic.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from .conftest import _free_port

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
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the serialised moto_server did not start") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def dynamo(serial_moto: str) -> str:
    """An empty account on the serialised moto_server; returns its endpoint URL."""
    request = urllib.request.Request(f"{serial_moto}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return serial_moto

"""moto_server for the AWS backends' tests: started once per session on a free port.

The real aiobotocore client talks to it over HTTP; every test starts from an empty
account (``POST /moto-api/reset``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _moto_command() -> list[str]:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return [found]


@contextmanager
def running_moto(command: Callable[[int], list[str]], what: str) -> Iterator[str]:
    """Run ``command(port)`` (a moto server on 127.0.0.1), wait until it answers, stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        command(port),
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
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def reset(endpoint: str) -> str:
    """Empty the moto account behind ``endpoint`` (``POST /moto-api/reset``); return it."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return endpoint


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto_server, wait until it answers, and set fake credentials."""
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    try:
        moto = _moto_command()
        with running_moto(
            lambda port: [*moto, "-H", "127.0.0.1", "-p", str(port)], "moto_server"
        ) as url:
            yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def aws(moto_endpoint: str) -> str:
    """An empty moto account: reset before the test; returns the endpoint URL."""
    return reset(moto_endpoint)

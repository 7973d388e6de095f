"""Run a small ASGI app on a real socket (hypercorn), for the fake push services.

hypercorn speaks HTTP/1.1 and HTTP/2 (over TLS with ALPN ``h2``), on asyncio and trio.
The socket is bound and listening before hypercorn starts, so a client may connect as
soon as :func:`serve_asgi` yields; the certificate is a fresh self-signed one made with
``cryptography``, trusted by :func:`client_ssl_context`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio

__all__ = [
    "ASGIApp",
    "Request",
    "client_ssl_context",
    "read_request",
    "respond",
    "self_signed_certificate",
    "serve_asgi",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Request:
    """One request as a fake sees it: method, path, lower-case headers, body, HTTP version."""

    __slots__ = ("body", "headers", "http_version", "method", "path")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.http_version: str = scope["http_version"]
        self.headers: dict[str, str] = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        self.body = body


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Read the whole body of an HTTP request."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return Request(scope, b"".join(chunks))


async def respond(
    send: Send, status: int, body: object = None, headers: dict[str, str] | None = None
) -> None:
    """Send a response; a non-``bytes`` body goes as JSON (``None``: empty)."""
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    pairs = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    if body is not None and not isinstance(body, bytes):
        pairs.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def self_signed_certificate() -> tuple[bytes, bytes]:
    """Return ``(certificate PEM, private key PEM)`` for ``127.0.0.1`` and ``localhost``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eventpatterns test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def client_ssl_context(certificate: bytes) -> ssl.SSLContext:
    """Return a client TLS context that trusts ``certificate`` (and offers ``h2``)."""
    context = ssl.create_default_context(cadata=certificate.decode())
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def _write_pems(directory: Path, certificate: tuple[bytes, bytes]) -> tuple[str, str]:
    (directory / "cert.pem").write_bytes(certificate[0])
    (directory / "key.pem").write_bytes(certificate[1])
    return str(directory / "cert.pem"), str(directory / "key.pem")


@asynccontextmanager
async def serve_asgi(
    app: ASGIApp, *, certificate: tuple[bytes, bytes] | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on ``127.0.0.1``, a free port, until the block exits; yield the port.

    Args:
        app: The ASGI app (lifespan is handled here).
        certificate: ``(certificate PEM, key PEM)`` to serve TLS (HTTP/2 by ALPN);
            cleartext HTTP/1.1 and h2c without it.
    """
    import sniffio
    from hypercorn.config import Config

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
    config.errorlog = None
    config.accesslog = None
    config.graceful_timeout = 1.0
    # hypercorn closes a connection after 1,000 requests by default; push services keep
    # theirs open (APNs asks for one long-lived HTTP/2 connection).
    config.keep_alive_max_requests = 2**31
    stop = anyio.Event()
    with tempfile.TemporaryDirectory(prefix="eventpatterns-fake-") as directory:
        if certificate is not None:
            config.certfile, config.keyfile = _write_pems(Path(directory), certificate)
        async with anyio.create_task_group() as tg:
            if sniffio.current_async_library() == "trio":
                from hypercorn.trio import serve as trio_serve

                await tg.start(partial(trio_serve, wrapped, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
            else:
                from hypercorn.asyncio import serve as asyncio_serve

                tg.start_soon(partial(asyncio_serve, wrapped, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
            try:
                yield port
            finally:
                stop.set()

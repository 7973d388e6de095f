"""OIDCAuthorizer against a real HTTP server on 127.0.0.1: discovery, cache, rotation, outages."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.realtime import Credentials, OIDCAuthorizer

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
OLD = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


class IdP:
    """A tiny identity provider: routes -> (status, JSON body); counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.slow: set[str] = set()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.hits[self.path] = idp.hits.get(self.path, 0) + 1
                if self.path in idp.slow:
                    idp.release.wait(10)
                status, body = idp.routes.get(self.path, (404, {"error": "not found"}))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def publish(self, *keys: tuple[Any, str], extra: Sequence[object] = ()) -> None:
        jwks: list[object] = []
        for key, kid in keys:
            algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
            jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "use": "sig"})
        self.routes["/jwks"] = (200, {"keys": [*extra, *jwks]})


@pytest.fixture
def idp() -> Iterator[IdP]:
    server = IdP()
    server.routes["/.well-known/openid-configuration"] = (
        200,
        {"issuer": server.url, "jwks_uri": f"{server.url}/jwks"},
    )
    server.publish((OLD, "old"))
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


ISSUER = "<the test server>"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def token(idp: IdP, key: Any = OLD, kid: str | None = "old", **claims: Any) -> str:
    body = {"sub": "alice", "aud": "app", "iss": idp.url, "exp": NOW + 3600, **claims}
    algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(body, key, algorithm, headers=headers)


async def authenticate(auth: OIDCAuthorizer, tok: str) -> str:
    principal = await auth(Credentials(token=tok))
    return principal.id


async def refused(auth: OIDCAuthorizer, tok: str | None) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        await auth(Credentials(token=tok))
    return info.value


async def test_discovery_then_jwks_then_cache(idp: IdP) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=clock)
        assert await authenticate(auth, token(idp)) == "alice"
        assert await authenticate(auth, token(idp, sub="bob")) == "bob"
        assert idp.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
        clock.now += 301  # past cache_ttl: fetched again (discovery is kept)
        assert await authenticate(auth, token(idp)) == "alice"
        assert idp.hits == {"/.well-known/openid-configuration": 1, "/jwks": 2}
        assert auth.fetches == 2


async def test_key_rotation(idp: IdP) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(
            idp.url, audience="app", client=client, jwks_uri=f"{idp.url}/jwks", clock=clock
        )
        assert await authenticate(auth, token(idp)) == "alice"
        idp.publish((NEW, "new"))  # the provider rotates: old removed, new published
        clock.now += 31  # past min_refresh_interval since the first fetch
        assert await authenticate(auth, token(idp, NEW, "new")) == "alice"
        assert idp.hits["/jwks"] == 2
        failure = await refused(auth, token(idp, OLD, "old"))
        assert failure.reason == "unknown_key"  # the removed key no longer verifies
        assert "/.well-known/openid-configuration" not in idp.hits


async def test_unknown_kid_flood_does_not_hammer_the_provider(idp: IdP) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=clock)
        assert await authenticate(auth, token(idp)) == "alice"
        for i in range(50):
            failure = await refused(auth, token(idp, NEW, f"bogus-{i}"))
            assert failure.reason == "unknown_key"
        assert idp.hits["/jwks"] == 1
        clock.now += 30
        await refused(auth, token(idp, NEW, "bogus"))
        assert idp.hits["/jwks"] == 2  # one more fetch once the interval has passed


async def test_concurrent_cold_start_fetches_once(idp: IdP) -> None:
    import anyio

    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=Clock())
        results: list[str] = []

        async def one() -> None:
            results.append(await authenticate(auth, token(idp)))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
        assert results == ["alice"] * 10
        assert idp.hits["/jwks"] == 1


async def test_es256_and_ignored_keys(idp: IdP) -> None:
    hostile: list[object] = [
        {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "hs"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "not a key",
    ]
    idp.publish((EC_KEY, "ec"), (OLD, "old"), extra=hostile)
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=Clock())
        assert await authenticate(auth, token(idp, EC_KEY, "ec")) == "alice"
        assert await authenticate(auth, token(idp, OLD, None)) == "alice"  # no kid: try each
        # A symmetric key published in the JWKS is never used: an HS256 token "signed"
        # with it is refused.
        secret = b"secret-secret-secret-secret-secret"
        forged = jwt.encode({"sub": "mallory", "aud": "app", "iss": idp.url, "exp": NOW + 60},
                            secret, "HS256", headers={"kid": "hs"})  # fmt: skip
        assert (await refused(auth, forged)).reason == "alg_not_allowed"


async def test_claims_are_checked(idp: IdP) -> None:
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=Clock())
        assert (await refused(auth, token(idp, aud="other"))).reason == "bad_audience"
        assert (await refused(auth, token(idp, iss="https://evil"))).reason == "bad_issuer"
        assert (await refused(auth, token(idp, exp=NOW - 1))).reason == "expired"
        assert (await refused(auth, None)).reason == "missing"
        assert (await refused(auth, "x" * 20_000)).reason == "malformed"
        assert idp.hits["/jwks"] == 1


async def test_unreachable_provider(idp: IdP) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(f"http://127.0.0.1:{port}", audience="app", client=client)
        failure = await refused(auth, token(idp))
    assert failure.reason == "jwks_unavailable"
    assert isinstance(failure.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    ("route", "answer"),
    [
        ("/jwks", (500, {"error": "boom"})),
        ("/jwks", (200, b"not json")),
        ("/jwks", (200, {"no": "keys"})),
        ("/jwks", (200, b"[" * 100_000)),
        ("/jwks", (200, b" " * (1 << 20) + b'{"keys": []}')),  # over 1 MiB
        ("/.well-known/openid-configuration", (200, {"issuer": "https://evil", "jwks_uri": "x"})),
        ("/.well-known/openid-configuration", (404, {})),
        ("/.well-known/openid-configuration", (200, {"jwks_uri": "http://[", "issuer": ISSUER})),
    ],
)
async def test_bad_provider_answers(idp: IdP, route: str, answer: tuple[int, Any]) -> None:
    if isinstance(answer[1], dict) and answer[1].get("issuer") == ISSUER:
        answer = (answer[0], {**answer[1], "issuer": idp.url})
    idp.routes[route] = answer
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=Clock())
        failure = await refused(auth, token(idp))
    assert failure.reason == "jwks_unavailable"


async def test_slow_provider_times_out(idp: IdP) -> None:
    idp.slow.add("/jwks")
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, timeout=0.3, clock=Clock())
        failure = await refused(auth, token(idp))
    assert failure.reason == "jwks_unavailable"
    assert failure.__cause__ is not None


async def test_outage_keeps_cached_keys_and_is_rate_limited(idp: IdP) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=clock)
        assert await authenticate(auth, token(idp)) == "alice"
        idp.routes["/jwks"] = (503, {})
        clock.now += 301
        assert await authenticate(auth, token(idp)) == "alice"  # stale keys, still valid
        assert idp.hits["/jwks"] == 2
        assert await authenticate(auth, token(idp)) == "alice"
        assert idp.hits["/jwks"] == 2  # no refetch within min_refresh_interval


async def test_cold_outage_is_rate_limited_with_the_cause(idp: IdP) -> None:
    idp.routes["/jwks"] = (503, {})
    clock = Clock()
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(idp.url, audience="app", client=client, clock=clock)
        first = await refused(auth, token(idp))
        second = await refused(auth, token(idp))
        assert (first.reason, second.reason) == ("jwks_unavailable", "jwks_unavailable")
        assert isinstance(second.__cause__, httpx.HTTPStatusError)
        assert idp.hits["/jwks"] == 1
        idp.publish((OLD, "old"))
        clock.now += 30
        assert await authenticate(auth, token(idp)) == "alice"


async def test_owned_client_is_closed(idp: IdP) -> None:
    async with OIDCAuthorizer(idp.url, audience="app", clock=Clock()) as auth:
        assert await authenticate(auth, token(idp)) == "alice"
        client = auth._client
        assert client is not None
    assert client.is_closed


def test_only_asymmetric_algorithms() -> None:
    with pytest.raises(ConfigurationError):
        OIDCAuthorizer("https://idp", audience="app", algorithms=("HS256",))
    with pytest.raises(ConfigurationError):
        OIDCAuthorizer("https://idp", audience="app", algorithms=())


async def test_keys_of_other_algorithms_or_odd_kids_are_skipped(idp: IdP) -> None:
    idp.publish((EC_KEY, "ec"), (OLD, "old"))
    jwks = idp.routes["/jwks"][1]
    odd = {**jwks["keys"][1], "kid": 5}
    idp.routes["/jwks"] = (200, {"keys": [*jwks["keys"], odd]})
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(
            idp.url, audience="app", client=client, algorithms=("RS256",), clock=Clock()
        )
        assert (await refused(auth, token(idp, EC_KEY, "ec"))).reason == "alg_not_allowed"
        assert await authenticate(auth, token(idp)) == "alice"
        await auth.aclose()  # a client it was given is left open
        assert not client.is_closed


async def test_issuer_with_a_trailing_slash_is_compared_exactly(idp: IdP) -> None:
    issuer = f"{idp.url}/"
    idp.routes["/.well-known/openid-configuration"] = (
        200,
        {"issuer": issuer, "jwks_uri": f"{idp.url}/jwks"},
    )
    async with httpx.AsyncClient() as client:
        auth = OIDCAuthorizer(issuer, audience="app", client=client, clock=Clock())
        assert await authenticate(auth, token(idp, iss=issuer)) == "alice"
        assert (await refused(auth, token(idp))).reason == "bad_issuer"  # no slash

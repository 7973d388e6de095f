"""Aggregated views against a real local HTTP service: fan-out, timeouts, retries, breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from eventpatterns.bff import Aggregator, BreakerPolicy, Part, PartResult, Upstream, View
from eventpatterns.bff.asgi import view_routes
from eventpatterns.bus import Backoff
from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.realtime import Credentials, Principal

from .upstreams import Upstream as Service
from .upstreams import running

pytestmark = pytest.mark.anyio

FAST = Backoff(initial=0.01, maximum=0.02, jitter=0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def service() -> AsyncIterator[tuple[Service, str]]:
    upstream = Service()
    async with running(upstream) as url:
        yield upstream, url


def aggregator(url: str, client: httpx.AsyncClient, **options: object) -> Aggregator:
    upstream = Upstream("svc", url, backoff=FAST, **options)  # type: ignore[arg-type]
    return Aggregator([upstream], allowed_hosts={"127.0.0.1"}, client=client)


async def test_parts_run_concurrently_and_each_gets_its_data(service: tuple[Service, str]) -> None:
    _upstream, url = service
    view = View("pair", "/pair", (Part("a", "svc", "/pair/a"), Part("b", "svc", "/pair/b")))
    async with httpx.AsyncClient() as client:
        result = await aggregator(url, client).fetch(view, {})
    assert result.complete
    assert {n: p.data for n, p in result.parts.items()} == {"a": {"half": "a"}, "b": {"half": "b"}}


async def test_a_fixed_url_is_parsed_once_and_serves_every_view_that_names_it(
    service: tuple[Service, str],
) -> None:
    _upstream, url = service
    one = View("one", "/one", (Part("a", "svc", "/pair/a"), Part("b", "svc", "/pair/b")))
    other = View("other", "/other", (Part("x", "svc", "/pair/b"), Part("y", "svc", "/pair/a")))
    async with httpx.AsyncClient() as client:
        agg = aggregator(url, client)
        for view, expected in ((one, {"a": "a", "b": "b"}), (other, {"x": "b", "y": "a"})) * 2:
            result = await agg.fetch(view, {})
            assert {n: p.data for n, p in result.parts.items()} == {
                n: {"half": h} for n, h in expected.items()
            }
    # Two fixed URLs, parsed once each, whatever the view naming them.
    assert sorted(str(u) for u in agg._fixed.values()) == [f"{url}/pair/a", f"{url}/pair/b"]


async def test_a_slow_part_times_out_and_the_rest_still_answer(
    service: tuple[Service, str],
) -> None:
    _, url = service
    view = View(
        "v", "/u/{uid}", (Part("user", "svc", "/users/{uid}"), Part("slow", "svc", "/slow"))
    )
    async with httpx.AsyncClient() as client:
        result = await aggregator(url, client, timeout=0.3, retries=0).fetch(view, {"uid": "7"})
    assert not result.complete
    assert result.parts["user"] == PartResult(True, 200, {"id": "7", "query": ""}, attempts=1)
    assert result.parts["slow"].error == "timeout after 0.3s"
    body = result.to_dict()
    assert body["parts"]["slow"] == {"ok": False, "status": None, "error": "timeout after 0.3s"}


async def test_get_is_retried_with_backoff_post_is_not(service: tuple[Service, str]) -> None:
    upstream, url = service
    async with httpx.AsyncClient() as client:
        agg = aggregator(url, client, retries=2)
        got = await agg.fetch(View("v", "/", (Part("f", "svc", "/flaky"),)), {})
        assert got.parts["f"].ok
        assert got.parts["f"].attempts == 3
        assert upstream.hits["/flaky"] == 3
        upstream.hits.clear()
        posted = await agg.fetch(View("p", "/", (Part("f", "svc", "/flaky", method="POST"),)), {})
    assert posted.parts["f"] == PartResult(False, 503, error="HTTP 503", attempts=1)
    assert upstream.hits["/flaky"] == 1


async def test_client_errors_are_not_retried_and_text_bodies_pass(
    service: tuple[Service, str],
) -> None:
    upstream, url = service
    view = View("v", "/", (Part("m", "svc", "/missing"), Part("t", "svc", "/text")))
    async with httpx.AsyncClient() as client:
        result = await aggregator(url, client, retries=3).fetch(view, {})
    assert result.parts["m"] == PartResult(False, 404, error="HTTP 404", attempts=1)
    assert result.parts["t"].data == "plain words"
    assert upstream.hits["/missing"] == 1


async def test_a_body_over_the_limit_is_a_part_error(service: tuple[Service, str]) -> None:
    _, url = service
    view = View("v", "/", (Part("h", "svc", "/huge"), Part("t", "svc", "/text")))
    async with httpx.AsyncClient() as client:
        result = await aggregator(url, client, max_body=64 * 1024).fetch(view, {})
    assert result.parts["h"] == PartResult(
        False, 200, error="response over 65536 bytes", attempts=1
    )
    assert result.parts["t"].ok


async def test_the_breaker_opens_and_stops_calling_the_upstream(
    service: tuple[Service, str],
) -> None:
    upstream, url = service
    view = View("v", "/", (Part("d", "svc", "/down"),))
    async with httpx.AsyncClient() as client:
        agg = aggregator(url, client, retries=0, breaker=BreakerPolicy(threshold=2, cooldown=60))
        first = await agg.fetch(view, {})
        await agg.fetch(view, {})
        assert agg.breaker("svc").state == "open"
        third = await agg.fetch(view, {})
    assert first.parts["d"].error == "HTTP 503"
    assert third.parts["d"] == PartResult(False, error="circuit open", attempts=0)
    assert upstream.hits["/down"] == 2


async def test_an_unreachable_upstream_is_a_part_error() -> None:
    async with httpx.AsyncClient() as client:
        agg = Aggregator(
            [Upstream("gone", "http://127.0.0.1:1", retries=1, backoff=FAST)],
            allowed_hosts={"127.0.0.1"},
            client=client,
        )
        result = await agg.fetch(View("v", "/", (Part("x", "gone", "/"),)), {})
    assert result.parts["x"].error == "unreachable: ConnectError"
    assert result.parts["x"].attempts == 2


async def test_user_values_cannot_change_the_host_or_path(service: tuple[Service, str]) -> None:
    upstream, url = service
    view = View(
        "v", "/u/{uid}", (Part("user", "svc", "/users/{uid}", query={"q": "{uid}", "k": "1"}),)
    )
    hostile = "../admin?x=1#@evil.example/"
    async with httpx.AsyncClient() as client:
        agg = aggregator(url, client)
        result = await agg.fetch(view, {"uid": hostile})
    assert result.parts["user"].data["id"] == hostile  # one segment, decoded by the server
    assert upstream.raw_paths == ["/users/..%2Fadmin%3Fx%3D1%23%40evil.example%2F"]
    assert "evil.example" not in agg.url(view.parts[0], {"uid": hostile})[0].split("/")[2]


def test_hosts_outside_the_allow_list_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not in allowed_hosts"):
        Aggregator([Upstream("x", "http://internal.example")], allowed_hosts={"api.example"})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Upstream("x", "ftp://h"), "not http"),
        (lambda: Upstream("x", "http://h?a=1"), "no query"),
        (lambda: Upstream("x", "http://h", timeout=0), "timeout"),
        (lambda: Upstream("x", "http://h", retries=11), "0 to 10"),
        (lambda: Upstream("x", "http://h", retries=True), "an int"),
        (lambda: Upstream("x", "http://h", max_body=0), ">= 1"),
        (lambda: Upstream("x", "http://h", max_body=1.5), "max_body must be an int"),  # type: ignore[arg-type]
        (lambda: Upstream("bad name", "http://h"), "upstream name"),
        (lambda: Part("p", "x", "relative"), "start with"),
        (lambda: Part("p", "x", "/a?b"), "no scheme"),
        (lambda: Part("p", "x", "/", method="PUT"), "GET or POST"),  # type: ignore[arg-type]
        (lambda: View("v", "/", ()), "no parts"),
        (lambda: View("v", "/", (Part("p", "x", "/"), Part("p", "x", "/"))), "share a name"),
        (lambda: View("v", "/", (Part("p", "x", "/{uid}"),)), "not in the view's path"),
    ],
)
def test_bad_views_are_refused(build: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()  # type: ignore[operator]


async def allow(credentials: Credentials) -> Principal:
    if credentials.token == "admin":
        return Principal("admin-1", scopes=frozenset({"admin"}))
    if credentials.token != "good":
        raise AuthenticationFailed("unknown token", reason="unknown_key")
    return Principal("user-1")


async def test_view_routes_serve_partial_responses_and_problems(
    service: tuple[Service, str],
) -> None:
    _, url = service
    summary = View(
        "summary",
        "/me/{uid}",
        (Part("me", "svc", "/users/{principal}"), Part("flaky", "svc", "/down")),
    )
    strict = View("strict", "/strict", (Part("d", "svc", "/down", required=True),))
    admin = View("admin", "/admin", (Part("u", "svc", "/users/{principal}"),), scope="admin")
    async with httpx.AsyncClient() as upstream_client:
        agg = aggregator(url, upstream_client, retries=0)
        app = Starlette(routes=view_routes(agg, [summary, strict, admin], authorizer=allow))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bff") as client:
            ok = await client.get("/me/1", headers={"authorization": "Bearer good"})
            denied = await client.get("/me/1")
            failed = await client.get("/strict?token=good")
            forbidden = await client.get("/admin?token=good")
            allowed = await client.get("/admin?token=admin")
    assert ok.status_code == 200
    assert ok.json()["complete"] is False
    assert ok.json()["parts"]["me"]["data"]["id"] == "user-1"
    assert ok.json()["parts"]["flaky"]["error"] == "HTTP 503"
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.json()["reason"] == "unknown_key"
    assert failed.status_code == 502
    assert "d" in failed.json()["parts"]
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "view 'admin' needs scope 'admin'"
    assert allowed.json()["parts"]["u"]["data"]["id"] == "admin-1"


def test_view_routes_check_upstreams_and_duplicates() -> None:
    agg = Aggregator([], allowed_hosts=set(), client=httpx.AsyncClient())
    with pytest.raises(ConfigurationError, match="no upstream 'x'"):
        view_routes(agg, [View("v", "/", (Part("p", "x", "/"),))])
    agg = Aggregator([Upstream("x", "http://h")], allowed_hosts={"h"}, client=httpx.AsyncClient())
    with pytest.raises(ConfigurationError, match="share the name"):
        view_routes(agg, [View("v", "/", (Part("p", "x", "/"),))] * 2)
    with pytest.raises(ConfigurationError, match="two upstreams"):
        Aggregator([Upstream("x", "http://h")] * 2, allowed_hosts={"h"})


async def test_an_aggregator_closes_the_client_it_made() -> None:
    async with Aggregator([Upstream("x", "http://h")], allowed_hosts={"h"}) as agg:
        assert not agg.client.is_closed
    assert agg.client.is_closed

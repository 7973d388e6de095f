"""PushTransport and its response parser: real sockets (raw servers and the receiver), fuzzed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.push import Delivered, PushTransport, Vapid, VapidKeys, WebPushProvider
from eventpatterns.push._http import ParsedResponse, ResponseParser, _split
from eventpatterns.testing import WebPushReceiver

VAPID = Vapid(VapidKeys.generate(), subject="mailto:ops@example.com")
OK = b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n\r\n"

Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the parser ----------------------------------------------------------------------------


def parse_all(data: bytes, *, cuts: list[int] = [], head_only: bool = False) -> ParsedResponse:  # noqa: B006 - read only
    parser = ResponseParser(head_only=head_only)
    at = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        done = parser.feed(data[at:cut])
        at = cut
        if done is not None:
            return done
    return parser.close()


def test_a_content_length_response_is_read_whole() -> None:
    response = parse_all(OK + b"", cuts=[3, 20])
    assert response == ParsedResponse(
        201, [(b"Location", b"/m/1"), (b"Content-Length", b"0")], b"", True
    )


def test_a_chunked_body_is_joined_and_trailers_skipped() -> None:
    raw = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n"
    for cut in range(len(raw)):
        response = parse_all(raw, cuts=[cut])
        assert (response.status, response.body, response.keep_alive) == (400, b"hello world", True)


def test_interim_answers_are_skipped_and_head_and_204_have_no_body() -> None:
    assert parse_all(b"HTTP/1.1 100 Continue\r\n\r\n" + OK).status == 201
    assert parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", head_only=True).body == b""
    assert parse_all(b"HTTP/1.1 204 No Content\r\n\r\n").keep_alive is True


def test_close_http10_and_read_to_end_are_not_kept_alive() -> None:
    assert not parse_all(
        b"HTTP/1.1 201 C\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ).keep_alive
    assert not parse_all(b"HTTP/1.0 201 C\r\nContent-Length: 0\r\n\r\n").keep_alive
    to_end = parse_all(b"HTTP/1.1 500 E\r\n\r\nall of it")
    assert (to_end.body, to_end.keep_alive) == (b"all of it", False)
    # Bytes nobody asked for after the response: that connection is not reused.
    assert not parse_all(OK + b"HTTP/1.1 201 C\r\n").keep_alive


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"SMTP/1.0 220 hi\r\n\r\n", "status line"),
        (b"HTTP/1.1 201 C\r\nno colon\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 201 C\r\nBad Name: x\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 201 C\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 201 C\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 201 C\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 201 C\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "CRLF"),
        (b"HTTP/1.1 201 C\r\nContent-Length: 5\r\n\r\nab", "mid-response"),
        (b"HTTP/1.1 201 C\r\n", "mid-response"),
    ],
)
def test_malformed_responses_are_protocol_errors(raw: bytes, message: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=message):
        parse_all(raw)


def test_oversized_responses_are_refused() -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="over 100 octets"):
        ResponseParser(max_size=100).feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + bytes(90)
        )
    with pytest.raises(httpx.RemoteProtocolError, match="64 KiB"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000)


names = st.from_regex(rb"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
    lambda n: n.lower() not in (b"content-length", b"transfer-encoding", b"connection")
)
values = st.from_regex(rb"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    status=st.integers(200, 599).filter(lambda s: s not in (204, 304)),
    headers=st.lists(st.tuples(names, values), max_size=6),
    body=st.binary(max_size=300),
    chunked=st.booleans(),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=10),
    cuts=st.lists(st.integers(0, 2000), max_size=5),
)
def test_any_well_formed_response_round_trips(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    chunked: bool,
    sizes: list[int],
    cuts: list[int],
) -> None:
    head = b"HTTP/1.1 %d Whatever\r\n" % status + b"".join(b"%s: %s\r\n" % h for h in headers)
    if chunked:
        framed, at, i = b"", 0, 0
        while at < len(body):
            piece = body[at : at + sizes[i % len(sizes)]]
            framed += b"%x\r\n%s\r\n" % (len(piece), piece)
            at, i = at + len(piece), i + 1
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
    else:
        raw = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    response = parse_all(raw, cuts=cuts)
    assert (response.status, response.body, response.keep_alive) == (status, body, True)
    assert response.headers[: len(headers)] == headers


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_any_bytes_parse_or_raise_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    for raw in (data, b"HTTP/1.1 200 OK\r\n" + data):
        try:
            response = parse_all(raw, cuts=cuts)
        except httpx.RemoteProtocolError:
            continue
        assert 200 <= response.status <= 999
        assert len(response.body) <= len(raw)


# -- the transport over real sockets -----------------------------------------------------


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on a loopback port that runs ``handler`` for every connection."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


async def read_request(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += await stream.receive()
    return head + b"\r\n\r\n" + rest


@pytest.mark.anyio
async def test_many_sends_share_at_most_max_connections() -> None:
    async with WebPushReceiver() as receiver:
        subs = [receiver.subscribe() for _ in range(12)]
        transport = PushTransport(max_connections=3)
        async with (
            httpx.AsyncClient(transport=transport) as client,
            WebPushProvider(VAPID, client=client) as provider,
        ):
            results: list[object] = []

            async def send(i: int) -> None:
                results.append(await provider.send(subs[i], b"message %d" % i))

            async with anyio.create_task_group() as tg:
                for i in range(12):
                    tg.start_soon(send, i)
        assert len(results) == 12
        assert all(isinstance(r, Delivered) for r in results)
        assert 1 <= transport.connections_opened <= 3
        assert sorted(m.payload for m in receiver.messages) == sorted(
            b"message %d" % i for i in range(12)
        )


@pytest.mark.anyio
async def test_the_request_goes_out_as_one_http11_message_and_is_kept_alive() -> None:
    seen: list[bytes] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            for _ in range(2):
                seen.append(await read_request(stream))
                await stream.send(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
                await stream.send(b"2\r\nok\r\n0\r\n\r\n")

    async with raw_server(handler) as origin:
        transport = PushTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            first = await client.post(
                f"{origin}/push/1?x=1", content=b"body", headers={"TTL": "60"}
            )
            second = await client.post(f"{origin}/push/2", content=b"more")
    assert (first.status_code, first.text, second.text) == (201, "ok", "ok")
    assert first.extensions["http_version"] == b"HTTP/1.1"
    assert transport.connections_opened == 1
    assert seen[0].startswith(b"POST /push/1?x=1 HTTP/1.1\r\n")
    assert b"\r\nTTL: 60\r\n" in seen[0]
    assert b"\r\ncontent-length: 4\r\n" in seen[0].lower()
    assert seen[0].endswith(b"\r\n\r\nbody")
    assert seen[1].endswith(b"\r\n\r\nmore")


@pytest.mark.anyio
async def test_a_connection_the_server_closed_while_idle_is_replaced_once() -> None:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:  # answers one request, then hangs up without saying so
            await read_request(stream)
            await stream.send(OK)

    async with raw_server(handler) as origin:
        transport = PushTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                assert (await client.post(f"{origin}/p", content=b"x")).status_code == 201
    assert transport.connections_opened == 3


@pytest.mark.anyio
async def test_a_server_that_hangs_up_mid_answer_or_sends_garbage_is_an_error() -> None:
    async def half(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nabc")

    async def garbage(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"\x16\x03\x01 not http\r\n\r\n")

    for handler, message in ((half, "mid-response"), (garbage, "status line")):
        async with (
            raw_server(handler) as origin,
            httpx.AsyncClient(transport=PushTransport()) as client,
        ):
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await client.post(f"{origin}/p", content=b"x")


async def opened(transport: PushTransport, count: int) -> None:
    """Wait until ``count`` connections were opened (a slot is taken before connecting)."""
    with anyio.fail_after(5):
        while transport.connections_opened < count:  # noqa: ASYNC110 - a counter, no event
            await anyio.sleep(0.002)


@pytest.mark.anyio
async def test_timeouts_read_pool_and_connect_are_httpx_timeouts() -> None:
    release = anyio.Event()

    async def stall(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await release.wait()
            await stream.send(OK)

    async with raw_server(stall) as origin:
        transport = PushTransport(max_connections=1)
        async with httpx.AsyncClient(transport=transport, timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(f"{origin}/p", content=b"x")
            # The slot of the timed-out request was given back: the next one gets it.
            async with anyio.create_task_group() as tg:
                first = anyio.Event()

                async def hold() -> None:
                    first.set()
                    response = await client.post(f"{origin}/p", content=b"x", timeout=5.0)
                    assert response.status_code == 201  # answered once released

                tg.start_soon(hold)
                await first.wait()
                await opened(transport, 2)  # hold() has taken the one connection
                with pytest.raises(httpx.PoolTimeout):
                    await client.post(
                        f"{origin}/p", content=b"x", timeout=httpx.Timeout(5, pool=0.1)
                    )
                release.set()
    assert transport.connections_opened == 2


@pytest.mark.anyio
async def test_a_post_deadline_bounds_the_answer_and_the_wait_for_a_connection() -> None:
    import time

    release = anyio.Event()

    async def stall(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                while True:  # the client hangs up on a request that timed out
                    await read_request(stream)
                    await release.wait()
                    await stream.send(OK)

    async with raw_server(stall) as origin, PushTransport(max_connections=1) as transport:
        target = transport.target(f"{origin}/p")
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await transport.post(target, b"", b"x", deadline=time.monotonic() + 0.2)
        assert time.monotonic() - started < 3  # the deadline, not the server, ended it
        async with anyio.create_task_group() as tg:
            answered: list[int] = []
            holding = anyio.Event()

            async def hold() -> None:  # takes the one connection until released
                holding.set()
                response = await transport.post(target, b"", b"x", deadline=time.monotonic() + 5)
                answered.append(response.status)

            tg.start_soon(hold)
            await holding.wait()
            await opened(transport, 2)  # hold() has taken the one slot
            with pytest.raises(httpx.PoolTimeout):
                await transport.post(target, b"", b"x", deadline=time.monotonic() + 0.1)
            release.set()
        assert answered == [201]
        # A deadline that has passed already: nothing waits.
        with pytest.raises(httpx.TimeoutException):
            await transport.post(target, b"", b"x", deadline=time.monotonic() - 1)


@pytest.mark.anyio
async def test_refused_and_unsupported_and_bad_headers() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with httpx.AsyncClient(transport=PushTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/p", content=b"x")
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.post(f"ftp://127.0.0.1:{port}/p", content=b"x")
    with pytest.raises(ValueError, match="max_connections"):
        PushTransport(max_connections=0)


segments = st.lists(
    st.from_regex(r"[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}", fullmatch=True), max_size=4
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.sampled_from(["push.example.net", "Fcm.GoogleApis.com", "127.0.0.1", "[::1]"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    paths=st.lists(segments, min_size=1, max_size=4),
    query=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9=&]{0,10}", fullmatch=True)),
)
def test_target_splits_each_url_as_urlsplit_does(
    scheme: str, host: str, port: int | None, paths: list[list[str]], query: str | None
) -> None:
    transport = PushTransport()
    origin = f"{scheme}://{host}" + ("" if port is None else f":{port}")
    for path in paths:  # the first one fills the origin's cache entry, the others use it
        url = origin + "/" + "/".join(path) + ("" if query is None else f"?{query}")
        assert transport.target(url) == _split(url)


def test_target_refuses_other_schemes_and_control_characters() -> None:
    transport = PushTransport()
    with pytest.raises(httpx.UnsupportedProtocol):
        transport.target("ftp://push.example.net/x")
    transport.target("https://push.example.net/first")
    with pytest.raises(httpx.LocalProtocolError):
        transport.target("https://push.example.net/a b")
    with pytest.raises(httpx.LocalProtocolError):
        transport.target("https://push.example.net/a\r\nX: y")
    assert transport.target("https://push.example.net/p#frag").path == b"/p"

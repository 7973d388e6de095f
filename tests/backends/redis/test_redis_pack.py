"""``pack``, the hot paths' RESP encoder, against redis-py's own ``pack_command``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from eventpatterns.backends.redis._connection import pack, pack_args, pack_head


def _encodable(text: str) -> bool:  # a lone surrogate fails in both encoders
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_SAFE_ARG = (
    st.binary(max_size=40) | st.text(max_size=20).filter(_encodable) | st.integers(-(2**70), 2**70)
)
#: A command's name comes first (redis-py splits a first argument at its spaces).
_NAME = st.sampled_from(["EVALSHA", "EVAL", "XADD", b"GET", b"HSET"])


def _theirs(*args: object) -> bytes:
    return b"".join(Connection().pack_command(*args))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_NAME, st.lists(_SAFE_ARG, max_size=6)).map(lambda c: [c[0], *c[1]]),
        min_size=1,
        max_size=4,
    )
)
def test_pack_writes_what_redis_py_writes(commands: list[list[object]]) -> None:
    assert pack(*commands) == b"".join(_theirs(*command) for command in commands)


@settings(max_examples=100, deadline=None)
@given(_NAME, st.lists(_SAFE_ARG, max_size=3), st.lists(_SAFE_ARG, max_size=4))
def test_a_head_and_its_rest_make_the_whole_command(
    name: object, head: list[object], rest: list[object]
) -> None:
    whole = pack_head(name, *head, more=len(rest)) + pack_args(*rest)
    assert whole == _theirs(name, *head, *rest)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200).filter(_encodable), min_size=1, max_size=6))
def test_short_strings_packed_again_come_from_the_cache_unchanged(args: list[str]) -> None:
    first = pack(["HSET", *args])
    assert first == _theirs("HSET", *args)
    assert pack(["HSET", *args]) == first  # the second time, short ones are cached


def test_the_cache_of_short_strings_is_bounded() -> None:
    from eventpatterns.backends.redis import _connection

    for n in range(_connection._SHORT_COUNT + 10):
        pack_args(f"key:{n}")
    assert len(_connection._SHORT) <= _connection._SHORT_COUNT
    long = "x" * (_connection._SHORT_SIZE + 1)
    assert pack_args(long) == b"$%d\r\n%b\r\n" % (len(long), long.encode())
    assert long not in _connection._SHORT

"""The key layout is documented once (docs/backends.md); the page, the code and a real bus agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio

from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.backends.redis._keys import BusKeys
from eventpatterns.testing import ManualClock, make_events

DOC = Path(__file__).resolve().parents[3] / "docs" / "backends.md"
_SECTION = DOC.read_text(encoding="utf-8").split("### Data layout", 1)[1]
LAYOUT = re.search(r"```text\n(.*?)```", _SECTION, re.S)[1]  # type: ignore[index]
# One entry per key: "{prefix}:<name>   <type>   <what it holds>", continued by indented lines.
ENTRIES = {
    m[1]: (m[2], m[3])
    for m in re.finditer(
        r"^(\{prefix\}:(?:<[^>]*>|\S)+)\s+(\w+)\s+(.*?)(?=^\{prefix\}|\Z)", LAYOUT, re.M | re.S
    )
}


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def fields_of(key: str) -> set[str]:
    """Return the hash fields the page names for ``key`` (each written ``field ->``)."""
    return set(re.findall(r"([<>\w:]+) ->", ENTRIES[key][1]))


def documented(key: str, prefix: str) -> str | None:
    """Return the documented pattern a real key matches, if any."""
    for pattern in ENTRIES:
        regex = re.escape(pattern).replace(re.escape("{prefix}"), re.escape("{" + prefix + "}"))
        regex = re.sub(r"<[^>]+>", "[^:]+", regex.replace("\\ ", " "))
        if re.fullmatch(regex, key):
            return pattern
    return None


def test_the_page_documents_exactly_the_keys_the_code_names() -> None:
    keys = BusKeys.of("prefix")
    group = keys.group("<group>")
    named = {keys.log, keys.meta, keys.groups, keys.dedupe("<event id>")}
    named |= {group.due, group.att, group.held, group.dlq}
    assert set(ENTRIES) == named
    assert {key: kind for key, (kind, _) in ENTRIES.items()} == {
        "{prefix}:log": "stream",
        "{prefix}:meta": "hash",
        "{prefix}:dd:<event id>": "string",
        "{prefix}:groups": "hash",
        "{prefix}:g:<group>:due": "zset",
        "{prefix}:g:<group>:att": "hash",
        "{prefix}:g:<group>:held": "hash",
        "{prefix}:g:<group>:dlq": "stream",
    }


@pytest.mark.redis
@pytest.mark.anyio
async def test_a_real_bus_uses_the_documented_keys_and_fields(
    prefix: str, clock: ManualClock, raw: redis.asyncio.Redis
) -> None:
    backend = RedisBusBackend(prefix=prefix, clock=clock, max_entries=3)
    try:
        await backend.create_group("g", start="earliest")
        await backend.append(make_events(5))  # trims 2 the group never read
        a, b, c = await backend.receive("g", "c", max_count=3, visibility_timeout=5, wait=0)
        await backend.release("g", a.receipt, delay=1, error="E: later")
        letter = await backend.dead_letter("g", b.receipt, error="E: dead")
        await backend.dead_letter("g", c.receipt, error="E: dead too")
        await backend.append(make_events(3, start=5))  # trims a and the dead letters' entries
        await backend.redrive("g", [letter.id])  # held: the log no longer has it
        clock.advance(2)
        await backend.receive("g", "c", max_count=10, visibility_timeout=5, wait=0)
        stats = await backend.group_stats("g")
        assert (stats.trimmed_unread, stats.dead_letters, stats.lost) == (2, 1, 1)
        keys = [text(k) async for k in raw.scan_iter(match="{" + prefix + "}:*")]
        assert {k: documented(k, prefix) for k in keys if documented(k, prefix) is None} == {}
        assert {documented(k, prefix) for k in keys} == set(ENTRIES)  # every one is used
        tag = "{" + prefix + "}"
        meta = {text(f) for f in await raw.hkeys(f"{tag}:meta")}
        assert meta == fields_of("{prefix}:meta")
        groups = {
            re.sub(r"^g(?=:|$)", "<group>", text(f)) for f in await raw.hkeys(f"{tag}:groups")
        }
        assert groups <= fields_of("{prefix}:groups")
        assert {"<group>", "<group>:base", "<group>:read", "<group>:skipped"} <= groups
    finally:
        await backend.aclose()

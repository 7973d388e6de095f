"""Lua scripts: each bus operation is one atomic round trip on the server.

Key layout (``{p}`` is the hash-tagged prefix, so every key of one bus lives in one
Redis Cluster slot)::

    {p}:log            stream   the log; fields ``i`` (event id) and ``e`` (event JSON)
    {p}:meta           hash     ``trimmed``: id of the newest entry removed by retention;
                                ``added`` / ``dropped``: entries appended / trimmed so far
    {p}:dd:<event id>  string   dedupe record ``<position>|<expiry>``, with a real TTL
    {p}:groups         hash     group name -> creation time (our registry of groups);
                                ``<group>:base`` entries appended before its start,
                                ``<group>:read`` entries it received since (so
                                ``lag = added - base - read``), ``<group>:skipped``
                                entries trimmed before it read them, ``<group>:lost``
                                pending entries trimmed before they were acked,
                                ``<group>:sweep`` / ``:reclaimed`` the XAUTOCLAIM
                                safety net's cursor and count; ``<group>:mark`` /
                                ``:park`` scratch of one receive transaction
    {p}:g:<group>:due  zset     pending stream ids scored by the bus-clock time at which
                                they become receivable (visibility deadline or retry due)
    {p}:g:<group>:att  hash     ``<id>`` -> attempts so far (absent: 1), ``<id>:e`` -> last
                                error, ``<id>:h`` -> held event JSON of a redriven letter
    {p}:g:<group>:dlq  stream   dead letters; fields ``p e r a t`` (position, event,
                                reason, attempts, failed-at)

The Redis consumer group named ``<group>`` on ``{p}:log`` is the group's cursor and its
pending-entries list (``XREADGROUP``, ``XACK``, ``XCLAIM`` keep ownership visible to
``XPENDING``). Deadlines live in the ``due`` sorted set rather than in the PEL's idle
time so that they follow the bus clock (which tests inject) and survive restarts.

Error replies start with ``EP`` codes that :mod:`._bus` maps to eventpatterns errors.
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "APPEND",
    "CREATE_GROUP",
    "DEAD_LETTER",
    "DISCARD",
    "READ",
    "RECEIVE",
    "RECOVER",
    "REDRIVE",
    "RELEASE",
    "STATS",
]

# Shared helpers: a field of a stream entry; whether an id is in the group's PEL; the
# event JSON of a log entry (false once trimmed).
_HELPERS = """
local function field(fields, name)
  for j = 1, #fields, 2 do
    if fields[j] == name then return fields[j + 1] end
  end
  return false
end
local function pending(log, group, id)
  return #redis.call('XPENDING', log, group, id, id, 1) > 0
end
local function payload(log, id)
  local entry = redis.call('XRANGE', log, id, id)[1]
  return entry and field(entry[2], 'e') or false
end
"""

# Acknowledge ids given as one comma-separated argument: one bulk string costs far less
# to send than one argument per id. Entries tracked one by one (retried, released,
# redriven) have state to drop too; on the happy path there is none, and the ack is
# just XACK.
_COUNT_SKIPPED = """
-- XREADGROUP skips entries trimmed before the group read them: count them, as the
-- memory backend does (entries are numbered in append order: base, read, dropped).
local function count_skipped(groups, group, meta)
  local counts = redis.call('HMGET', groups, group .. ':base', group .. ':read')
  local read = tonumber(counts[1] or 0) + tonumber(counts[2] or 0)
  local skipped = tonumber(redis.call('HGET', meta, 'dropped') or 0) - read
  if skipped > 0 then
    redis.call('HINCRBY', groups, group .. ':skipped', skipped)
    redis.call('HINCRBY', groups, group .. ':read', skipped)
  end
end
"""


_ACK_IDS = """
local function ack_ids(log, group, due, att, held, list)
  if list == '' then return 0 end
  local ids = {}
  for id in string.gmatch(list, '[^,]+') do ids[#ids + 1] = id end
  local tracked = redis.call('HLEN', att) > 0 or redis.call('HLEN', held) > 0
  local acked = 0
  for s = 1, #ids, 1000 do  -- unpack() has limits
    local e = math.min(s + 999, #ids)
    acked = acked + redis.call('XACK', log, group, unpack(ids, s, e))
    if tracked then
      local fields = {}
      for i = s, e do
        fields[#fields + 1] = ids[i]; fields[#fields + 1] = ids[i] .. ':e'
      end
      redis.call('ZREM', due, unpack(ids, s, e))
      redis.call('HDEL', att, unpack(fields))
      redis.call('HDEL', held, unpack(ids, s, e))
    end
  end
  return acked
end
"""

# KEYS: log, meta, dedupe key per event.  ARGV: now, window, maxlen, ttl_ms, (id, json)*
APPEND = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
local ttl = ARGV[4]
local out = {}
local added = 0
for i = 1, #KEYS - 2 do
  local dk = KEYS[i + 2]
  local pos = false
  if window > 0 then
    local seen = redis.call('GET', dk)
    if seen then
      local sep = string.find(seen, '|', 1, true)
      if sep and tonumber(string.sub(seen, sep + 1)) > now then
        pos = string.sub(seen, 1, sep - 1)
      end
    end
  end
  if not pos then
    pos = redis.call('XADD', KEYS[1], '*', 'i', ARGV[3 + 2 * i], 'e', ARGV[4 + 2 * i])
    added = added + 1
    if window > 0 then
      redis.call('SET', dk, pos .. '|' .. string.format('%.6f', now + window), 'PX', ttl)
    end
  end
  out[i] = pos
end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'added', added) end
local len = redis.call('XLEN', KEYS[1])
if len > maxlen then
  -- Exact trimming, remembering the newest trimmed id so that readers can tell
  -- "older than retained" (PositionExpired) from "nothing new".
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - maxlen)
  redis.call('XTRIM', KEYS[1], 'MAXLEN', maxlen)
  redis.call('HSET', KEYS[2], 'trimmed', old[#old][1])
  redis.call('HINCRBY', KEYS[2], 'dropped', #old)
end
return out
"""

# KEYS: log, meta.  ARGV: start ('-' or '(<id>'), count
# Returns {newest trimmed id or '', (id, json)*}: the check and the page in one step.
READ = (
    _HELPERS
    + """
local out = {redis.call('HGET', KEYS[2], 'trimmed') or ''}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])) do
  out[#out + 1] = entry[1]; out[#out + 1] = field(entry[2], 'e') or ''
end
return out
"""
)

# KEYS: log, groups, held, dlq, meta.  ARGV: group
# Returns {base, read, skipped, lost, reclaimed, added, dead letters, redriven, pending}
STATS = """
local g = ARGV[1]
local c = redis.call('HMGET', KEYS[2], g, g .. ':base', g .. ':read', g .. ':skipped',
                     g .. ':lost', g .. ':reclaimed')
if not c[1] then return redis.error_reply('EPNOGROUP ' .. g) end
local added = redis.call('HGET', KEYS[5], 'added')
return {tonumber(c[2] or 0), tonumber(c[3] or 0), tonumber(c[4] or 0), tonumber(c[5] or 0),
        tonumber(c[6] or 0), tonumber(added or 0), redis.call('XLEN', KEYS[4]),
        redis.call('HLEN', KEYS[3]), redis.call('XPENDING', KEYS[1], g)[1]}
"""

# KEYS: log, groups, meta.  ARGV: group, start id ('0' or '$'), now
CREATE_GROUP = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
-- 'latest' starts after every entry appended so far, 'earliest' after the trimmed ones.
local base = redis.call('HGET', KEYS[3], ARGV[2] == '$' and 'added' or 'dropped') or 0
redis.call('HSET', KEYS[2], ARGV[1] .. ':base', base, ARGV[1] .. ':read', 0)
-- An existing Redis group of that name (BUSYGROUP) is adopted as it is.
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
return 1
"""

# KEYS: log, groups, due, att, held, meta.
# ARGV: group, consumer, now, deadline, max_count, reclaim idle ms ('' = no sweep this time),
#       ids to acknowledge first (comma-separated, may be '')
# Returns {next_due, last_id, k, (id, json, attempt, error) * k, (id, json)*}: k
# redeliveries, then first deliveries (attempt 1, no error).
RECEIVE = (
    _HELPERS
    + _ACK_IDS
    + _COUNT_SKIPPED
    + """
local log, groups, due, att, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer = ARGV[1], ARGV[2]
local now, deadline, maxc = ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HEXISTS', groups, group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
-- Acks the client queued since its last call ride along (one round trip, not two).
ack_ids(log, group, due, att, held, ARGV[7])
if ARGV[6] ~= '' then
  -- Safety net: pending entries idle for long with no deadline of ours (bookkeeping
  -- evicted, or the group used by another client) become due now. XAUTOCLAIM walks
  -- the PEL a page per sweep and drops entries retention already trimmed.
  local cursor = redis.call('HGET', groups, group .. ':sweep') or '0-0'
  local res = redis.call('XAUTOCLAIM', log, group, consumer, ARGV[6], cursor,
                         'COUNT', 100, 'JUSTID')
  redis.call('HSET', groups, group .. ':sweep', res[1])
  for _, id in ipairs(res[2]) do
    if not redis.call('ZSCORE', due, id) then
      redis.call('ZADD', due, now, id)
      redis.call('HINCRBY', groups, group .. ':reclaimed', 1)
    end
  end
  if res[3] and #res[3] > 0 then
    redis.call('HINCRBY', groups, group .. ':lost', #res[3])
  end
end
-- A first delivery is covered by its batch's member 'b|first|last|count'. When that
-- deadline passes, the entries of the batch still pending become members of their own.
local ready
repeat
  ready = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, maxc)
  local exploded = false
  for i = 1, #ready, 2 do
    local member = ready[i]
    if string.sub(member, 1, 2) == 'b|' then
      local first, last, count = string.match(member, '^b|([^|]+)|([^|]+)|(%d+)$')
      for _, p in ipairs(redis.call('XPENDING', log, group, first, last, count)) do
        if not redis.call('ZSCORE', due, p[1]) then
          redis.call('ZADD', due, ready[i + 1], p[1])
        end
      end
      redis.call('ZREM', due, member)
      exploded = true
    end
  end
until not exploded
local out = {'', '', 0}
local n = 0
for i = 1, #ready, 2 do
  local id = ready[i]
  local json = redis.call('HGET', held, id)
  if not json and pending(log, group, id) then json = payload(log, id) end
  if json then
    local attempt = redis.call('HGET', att, id)
    attempt = attempt and (tonumber(attempt) + 1) or 2
    redis.call('HSET', att, id, attempt)
    redis.call('ZADD', due, deadline, id)
    redis.call('XCLAIM', log, group, consumer, 0, id, 'JUSTID')
    local err = redis.call('HGET', att, id .. ':e') or ''
    n = n + 1
    out[#out + 1] = id; out[#out + 1] = json; out[#out + 1] = attempt; out[#out + 1] = err
  else
    -- Acked meanwhile, or trimmed by retention while pending (counted, never silent).
    if pending(log, group, id) then redis.call('HINCRBY', groups, group .. ':lost', 1) end
    redis.call('ZREM', due, id)
    redis.call('HDEL', att, id, id .. ':e')
    redis.call('XACK', log, group, id)
  end
end
out[3] = n
if n < maxc then
  count_skipped(groups, group, KEYS[6])
  local got = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', maxc - n,
                         'STREAMS', log, '>')
  if got then
    local entries = got[1][2]
    redis.call('HINCRBY', groups, group .. ':read', #entries)
    local k = #out
    for _, entry in ipairs(entries) do
      -- APPEND writes the fields as i <id> e <json>; look further only if they are not.
      local f = entry[2]
      out[k + 1] = entry[1]
      out[k + 2] = f[3] == 'e' and f[4] or field(f, 'e') or ''
      k = k + 2
    end
    n = n + #entries
    if #entries > 0 then
      local member = 'b|' .. entries[1][1] .. '|' .. entries[#entries][1] .. '|' .. #entries
      redis.call('ZADD', due, deadline, member)
    end
  end
end
if n == 0 then
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] then out[1] = first[2] end
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  out[2] = last and last[1] or '0-0'
end
return out
"""
)

# The fast path of a receive is one MULTI/EXEC: TAKE_BEFORE, a plain ``XREADGROUP``
# (Redis writes its reply itself: about a third of the server time of reading the
# same entries inside Lua and returning them), then TAKE_AFTER. They are sent with
# EVALSHA (EVAL would have Redis hash their text on every call), loaded on each new
# connection. An EVALSHA that fails with NOSCRIPT (``SCRIPT FLUSH``) inside MULTI
# does not stop the XREADGROUP queued after it: the client then runs RECOVER, which
# does what the missing script would have done for the entries that were read.

# Put a cursor that TAKE_BEFORE parked back where it was.
_BATCH = """
-- A received batch's deadline member, as RECEIVE writes it, and its count of reads.
local function record_batch(due, groups, group, deadline, first, last, n)
  redis.call('ZADD', due, deadline, 'b|' .. first .. '|' .. last .. '|' .. n)
  redis.call('HINCRBY', groups, group .. ':read', n)
end
-- What a receive that read nothing returns: {next due time or '', last id of the log}.
local function wait_info(log, due)
  local next_due = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')[2] or ''
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  return {next_due, last and last[1] or '0-0'}
end
"""


_UNPARK = """
local function unpark(log, groups, group)
  local park = redis.call('HGET', groups, group .. ':park')
  if not park then return false end
  redis.call('HDEL', groups, group .. ':park')
  local id, read = string.match(park, '^([^|]+)|(.*)$')
  if read == '' or not pcall(redis.call, 'XGROUP', 'SETID', log, group, id,
                             'ENTRIESREAD', read) then
    redis.call('XGROUP', 'SETID', log, group, id)  -- Redis 6.2: no ENTRIESREAD
  end
  return true
end
"""

# KEYS: log, groups, due, att, held, meta.  ARGV: group, now, ids to acknowledge first
# Returns 0 (go on: the XREADGROUP that follows reads new entries) or 1 (redeliveries
# are due: the cursor is parked so that it reads nothing; the client runs RECEIVE).
TAKE_BEFORE = (
    _ACK_IDS
    + _COUNT_SKIPPED
    + """
local log, groups, due = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
if redis.call('HEXISTS', groups, group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
ack_ids(log, group, due, KEYS[4], KEYS[5], ARGV[3])
if #redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[2], 'LIMIT', 0, 1) > 0 then
  -- Park the group's cursor at the end of the log; TAKE_AFTER puts it back.
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', log)) do
    local f = {}
    for j = 1, #info, 2 do f[info[j]] = info[j + 1] end
    if f['name'] == group then
      local read = f['entries-read']
      -- HSETNX: a park left by a transaction that failed half-way (see RECOVER)
      -- holds the real cursor; the cursor now is the end of the log.
      redis.call('HSETNX', groups, group .. ':park',
                 f['last-delivered-id'] .. '|' .. (read and tostring(read) or ''))
      redis.call('XGROUP', 'SETID', log, group, '$')
    end
  end
  redis.call('HDEL', groups, group .. ':mark')  -- TAKE_AFTER: no batch to record
  return 1
end
count_skipped(groups, group, KEYS[6])
-- The entries the XREADGROUP delivers are new to the PEL and above all of it: the
-- PEL's size and top now tell TAKE_AFTER which they were.
local pel = redis.call('XPENDING', log, group)
redis.call('HSET', groups, group .. ':mark', pel[1] .. '|' .. (pel[3] or ''))
return 0
"""
)

# KEYS: log, groups, due.  ARGV: group, deadline
# Returns {} after a batch, else {next_due or '', last id of the log} (for the wait).
TAKE_AFTER = (
    _UNPARK
    + _BATCH
    + """
local log, groups, due = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
unpark(log, groups, group)
local mark = redis.call('HGET', groups, group .. ':mark')
if not mark then return {} end  -- TAKE_BEFORE parked the cursor, or failed
redis.call('HDEL', groups, group .. ':mark')
local size, top = string.match(mark, '^(%d+)|(.*)$')
local pel = redis.call('XPENDING', log, group)
local n = pel[1] - tonumber(size)
if n > 0 then
  -- '(' excludes the old top: the batch is what lies above it.
  record_batch(due, groups, group, ARGV[2], top == '' and '-' or '(' .. top, pel[3], n)
  return {}
end
return wait_info(log, due)
"""
)

# After a receive transaction in which TAKE_BEFORE or TAKE_AFTER failed with NOSCRIPT:
# whatever ran, leave the group as if both had. The cursor is never left parked; the
# entries the XREADGROUP delivered (given as first id, last id, count) get their
# deadline; the acks and the count of skipped entries are done if TAKE_BEFORE did not.
# KEYS: log, groups, due, att, held, meta.
# ARGV: group, deadline, ids to acknowledge, '1' if TAKE_BEFORE ran else '',
#       first id, last id, count
# Returns {next_due or '', last id of the log} (for the wait, when nothing was read).
RECOVER = (
    _ACK_IDS
    + _COUNT_SKIPPED
    + _UNPARK
    + _BATCH
    + """
local log, groups, due = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
if redis.call('HEXISTS', groups, group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
unpark(log, groups, group)
redis.call('HDEL', groups, group .. ':mark')
if ARGV[4] == '' then
  ack_ids(log, group, due, KEYS[4], KEYS[5], ARGV[3])
  count_skipped(groups, group, KEYS[6])  -- as before the read: it is not counted yet
end
local n = tonumber(ARGV[7])
if n > 0 then
  record_batch(due, groups, group, ARGV[2], ARGV[5], ARGV[6], n)
end
return wait_info(log, due)
"""
)

# KEYS: log, groups, due, att, held.  ARGV: group, ids (comma-separated, may be '')
ACK = (
    _ACK_IDS
    + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply('EPNOGROUP ' .. ARGV[1])
end
return ack_ids(KEYS[1], ARGV[1], KEYS[3], KEYS[4], KEYS[5], ARGV[2])
"""
)

# KEYS: log, groups, due, att.  ARGV: group, id, due_at, error
RELEASE = (
    _HELPERS
    + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply('EPNOGROUP ' .. ARGV[1])
end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) and not pending(KEYS[1], ARGV[1], ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2] .. ':e', ARGV[4])
return 1
"""
)

# KEYS: log, groups, due, att, held, dlq.  ARGV: group, id, error, failed_at
# Returns {dead letter id, event json, attempts}
DEAD_LETTER = (
    _HELPERS
    + """
local log, groups, due, att, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, id = ARGV[1], ARGV[2]
if redis.call('HEXISTS', groups, group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
local json = redis.call('HGET', held, id)
if not json then
  if not pending(log, group, id) then return redis.error_reply('EPNOTPENDING ' .. id) end
  json = payload(log, id)
end
local attempts = redis.call('HGET', att, id) or '1'
redis.call('XACK', log, group, id)
redis.call('ZREM', due, id)
redis.call('HDEL', att, id, id .. ':e')
redis.call('HDEL', held, id)
if not json then
  redis.call('HINCRBY', groups, group .. ':lost', 1)
  return redis.error_reply('EPTRIMMED ' .. id)
end
local dead = redis.call('XADD', KEYS[6], '*', 'p', id, 'e', json, 'r', ARGV[3],
                        'a', attempts, 't', ARGV[4])
return {dead, json, attempts}
"""
)

# KEYS: log, groups, due, att, held, dlq.  ARGV: group, now, mode ('all' | 'ids'), id*
REDRIVE = (
    _HELPERS
    + """
local log, groups, due, att, held, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group = ARGV[1]
if redis.call('HEXISTS', groups, group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
local chosen = {}
if ARGV[3] == 'all' then
  chosen = redis.call('XRANGE', dlq, '-', '+')
else
  local seen = {}
  for i = 4, #ARGV do
    if not seen[ARGV[i]] then
      seen[ARGV[i]] = true
      local entry = redis.call('XRANGE', dlq, ARGV[i], ARGV[i])[1]
      if not entry then return redis.error_reply('EPNODEAD ' .. ARGV[i]) end
      chosen[#chosen + 1] = entry
    end
  end
end
for _, entry in ipairs(chosen) do
  local pos = field(entry[2], 'p')
  if not redis.call('ZSCORE', due, pos) and not pending(log, group, pos) then
    -- Attempts start over; the event is held here, as the log may trim it any time.
    redis.call('HSET', att, pos, 0)
    redis.call('HDEL', att, pos .. ':e')
    redis.call('HSET', held, pos, field(entry[2], 'e'))
  end
  redis.call('ZADD', due, ARGV[2], pos)
  redis.call('XDEL', dlq, entry[1])
end
return #chosen
"""
)

# KEYS: groups, dlq.  ARGV: group, mode ('all' | 'ids'), id*
DISCARD = """
local group = ARGV[1]
if redis.call('HEXISTS', KEYS[1], group) == 0 then
  return redis.error_reply('EPNOGROUP ' .. group)
end
if ARGV[2] == 'all' then
  local n = redis.call('XLEN', KEYS[2])
  redis.call('DEL', KEYS[2])
  return n
end
local ids, seen = {}, {}
for i = 3, #ARGV do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    if not redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])[1] then
      return redis.error_reply('EPNODEAD ' .. ARGV[i])
    end
    ids[#ids + 1] = ARGV[i]
  end
end
if #ids == 0 then return 0 end
return redis.call('XDEL', KEYS[2], unpack(ids))
"""

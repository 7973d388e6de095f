-- Helpers shared by every script: _scripts.py puts this file in front of each one.
-- Key and field names are documented once, in docs/backends.md ("Data layout").

-- An error reply that _connection.REPLIES maps to an eventpatterns error.
local function fail(code, arg)
  return redis.error_reply(code .. ' ' .. arg)
end

-- Whether the group is registered (our registry, not the Redis group alone).
local function has_group(groups, group)
  return redis.call('HEXISTS', groups, group) == 1
end

-- The log's epoch; a log without one (new, or deleted since) gets `token`.
local function epoch_of(meta, token)
  local current = redis.call('HGET', meta, 'epoch')
  if current then return current end
  redis.call('HSET', meta, 'epoch', token)
  return token
end

-- Whether stream id a comes before stream id b (ids have no leading zeros; they may
-- exceed a Lua number's 53 bits, so they are compared as digit strings).
local function id_before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then
    return #ams < #bms or (#ams == #bms and ams < bms)
  end
  return #aseq < #bseq or (#aseq == #bseq and aseq < bseq)
end

-- A field of a stream entry (a flat name/value list), or false.
local function field(fields, name)
  for j = 1, #fields, 2 do
    if fields[j] == name then return fields[j + 1] end
  end
  return false
end

-- Whether id is in the group's pending entries list.
local function pending(log, group, id)
  return #redis.call('XPENDING', log, group, id, id, 1) > 0
end

-- The event JSON of a log entry; false once retention trimmed it.
local function payload(log, id)
  local entry = redis.call('XRANGE', log, id, id)[1]
  return entry and field(entry[2], 'e') or false
end

-- Acknowledge ids given as one comma-separated string (one bulk string costs far less
-- to send than one argument per id). Entries tracked one by one (retried, released,
-- redriven) have state to drop too; on the happy path there is none: just XACK.
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

-- A received batch of first deliveries: one deadline member 'b|first|last|count' for
-- all of it, and its count of reads.
local function record_batch(due, groups, group, deadline, first, last, n)
  redis.call('ZADD', due, deadline, 'b|' .. first .. '|' .. last .. '|' .. n)
  redis.call('HINCRBY', groups, group .. ':read', n)
end

-- What a receive that read nothing returns: {next due time or '', last id of the log},
-- what the client needs to wait for the next deadline or entry.
local function wait_info(log, due)
  local next_due = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')[2] or ''
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  return {next_due, last and last[1] or '0-0'}
end

-- Put back a group cursor that take_before.lua parked at the end of the log.
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


-- Helpers shared by the presence scripts: _presence.py puts this file in front of each
-- (the bus's scripts are one directory up, behind their own helpers.lua).
-- KEYS[1]: {p}:presence:due (ZSET "<channel>\n<member>\n<connection>" -> deadline)
-- ARGV[1]: the key base "{p}:presence:"; ARGV[2]: now (the caller's clock, seconds);
-- ARGV[3]: how many expired memberships one call removes at most.
-- Other keys, all in the slot of {p}: base.."ch:"..channel (HASH "<member>\n<connection>"
-- -> info JSON), base.."n:"..channel (HASH member -> connections), base.."conn:"..connection
-- (SET "<channel>\n<member>"); events are published on base.."ev:"..channel as
-- ["join"|"leave", member, connection, info JSON, expired].
-- Names never hold "\n": the library checks them (printable characters only).
local base = ARGV[1]
local due = KEYS[1]
local now = ARGV[2]
local batch = tonumber(ARGV[3])

local function publish(kind, channel, member, conn, info, expired)
  redis.call('PUBLISH', base .. 'ev:' .. channel,
    cjson.encode({kind, member, conn, info, expired}))
end

-- Remove one membership; 1 when it was the member's last connection (a leave is published).
local function remove(channel, member, conn, expired)
  local field = member .. '\n' .. conn
  redis.call('ZREM', due, channel .. '\n' .. field)
  local chkey = base .. 'ch:' .. channel
  local info = redis.call('HGET', chkey, field)
  if not info then return 0 end
  redis.call('HDEL', chkey, field)
  redis.call('SREM', base .. 'conn:' .. conn, channel .. '\n' .. member)
  local nkey = base .. 'n:' .. channel
  if redis.call('HINCRBY', nkey, member, -1) > 0 then return 0 end
  redis.call('HDEL', nkey, member)
  publish('leave', channel, member, conn, info, expired)
  return 1
end

-- Remove up to `batch` memberships past their deadline, in one atomic step (so each
-- expired membership is removed, and its leave published, by exactly one caller).
-- Returns the members that left, and whether more may be due.
local function sweep()
  local items = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, batch)
  local left = 0
  for _, item in ipairs(items) do
    local channel, member, conn = string.match(item, '^([^\n]*)\n([^\n]*)\n(.*)$')
    if channel then
      left = left + remove(channel, member, conn, true)
    else
      redis.call('ZREM', due, item)  -- not ours: never loop on it
    end
  end
  return left, #items >= batch
end

-- Split a "<channel>\n<member>" member of a connection's SET.
local function split(item)
  return string.match(item, '^([^\n]*)\n(.*)$')
end

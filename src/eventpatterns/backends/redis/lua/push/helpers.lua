-- Helpers shared by the device registry scripts: _devices.py puts this file in front of
-- each (the bus's scripts are two directories up, behind their own helpers.lua).
-- KEYS[1]: {p}:push:seen (ZSET device id -> last_seen).
-- ARGV[1]: the key base "{p}:push:". Other keys, all in the slot of {p}:
-- base.."d:"..id (HASH u user, c created_at, r registered_at, s last_seen, j the
-- registration's JSON, k the topics' JSON), base.."u:"..user (SET of the user's ids).
-- A device's id is derived from its platform and token: the device hash is the token
-- index. Times are the callers' Unix seconds, as Python's repr() writes floats.
local base = ARGV[1]
local seen = KEYS[1]
local FIELDS = {'u', 'c', 'r', 's', 'j', 'k'}

local function dkey(id) return base .. 'd:' .. id end
local function ukey(user) return base .. 'u:' .. user end

-- Delete a device and its index entries.
local function drop(id, user)
  redis.call('DEL', dkey(id))
  redis.call('SREM', ukey(user), id)
  redis.call('ZREM', seen, id)
end

-- A device's fields, in FIELDS order (false for a missing device).
local function read(id)
  local fields = redis.call('HMGET', dkey(id), unpack(FIELDS))
  if not fields[1] then return false end
  return fields
end

-- Append events, skipping ids seen within the dedupe window; trim to max_entries.
-- KEYS: log, meta, one dedupe key per event.
-- ARGV: now, window, max_entries, dedupe ttl ms, epoch token, (event id, json)*
-- Returns {epoch, stream id per event (the original one for a duplicate)}.
local log, meta = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
local ttl = ARGV[4]
local epoch = epoch_of(meta, ARGV[5])
local out = {epoch}
local added = 0
for i = 1, #KEYS - 2 do
  local dk = KEYS[i + 2]
  local pos = false
  if window > 0 then
    -- '<id>|<expiry>|<epoch>': a record of another incarnation of the log is no duplicate.
    local seen = redis.call('GET', dk)
    if seen then
      local id, expiry, of = string.match(seen, '^([^|]+)|([^|]+)|?(.*)$')
      if id and tonumber(expiry) > now and (of == '' or of == epoch) then pos = id end
    end
  end
  if not pos then
    pos = redis.call('XADD', log, '*', 'i', ARGV[4 + 2 * i], 'e', ARGV[5 + 2 * i])
    added = added + 1
    if window > 0 then
      redis.call('SET', dk, pos .. '|' .. string.format('%.6f', now + window) .. '|' .. epoch,
                 'PX', ttl)
    end
  end
  out[i + 1] = pos
end
if added > 0 then redis.call('HINCRBY', meta, 'added', added) end
local len = redis.call('XLEN', log)
if len > maxlen then
  -- Exact trimming, remembering the newest trimmed id so that readers can tell
  -- "older than retained" (PositionExpired) from "nothing new".
  local old = redis.call('XRANGE', log, '-', '+', 'COUNT', len - maxlen)
  redis.call('XTRIM', log, 'MAXLEN', maxlen)
  redis.call('HSET', meta, 'trimmed', old[#old][1])
  redis.call('HINCRBY', meta, 'dropped', #old)
end
return out

-- The full receive: queued acks, the XAUTOCLAIM safety net, due redeliveries first,
-- then new entries. The client runs it when take_before.lua finds redeliveries due,
-- or when the group's sweep is due; otherwise the receive transaction does the work.
-- KEYS: log, groups, due, att, held, meta.
-- ARGV: group, consumer, now, deadline, max_count, reclaim idle ms ('' = no sweep this
--       time), ids to acknowledge first (comma-separated, may be '')
-- Returns {next_due or '', last id or '', k, epoch, (id, json, attempt, error) * k,
-- (id, json)*}: k redeliveries, then first deliveries (attempt 1, no error); next_due
-- and last id are set when nothing was taken.
local log, groups, due, att, held, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, consumer = ARGV[1], ARGV[2]
local now, deadline, maxc = ARGV[3], ARGV[4], tonumber(ARGV[5])
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
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
local out = {'', '', 0, redis.call('HGET', meta, 'epoch') or ''}
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
  count_skipped(groups, group, meta)
  local got = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', maxc - n,
                         'STREAMS', log, '>')
  local entries = got and got[1][2] or {}
  if #entries > 0 then
    local k = #out
    for _, entry in ipairs(entries) do
      -- append.lua writes the fields as i <id> e <json>; look further only if not.
      local f = entry[2]
      out[k + 1] = entry[1]
      out[k + 2] = f[3] == 'e' and f[4] or field(f, 'e') or ''
      k = k + 2
    end
    n = n + #entries
    record_batch(due, groups, group, deadline, entries[1][1], entries[#entries][1], #entries)
  end
end
if n == 0 then
  local info = wait_info(log, due)
  out[1], out[2] = info[1], info[2]
end
return out

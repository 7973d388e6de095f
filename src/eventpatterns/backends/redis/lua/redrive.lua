-- Deliver dead letters again, attempts starting over; every id is checked first.
-- KEYS: log, groups, due, att, held, dlq.  ARGV: group, now, mode ('all' | 'ids'), id*
-- Returns how many. Errors: EPNOGROUP, EPNODEAD <id> (nothing is redriven).
local log, groups, due, att, held, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group = ARGV[1]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
local chosen = {}
if ARGV[3] == 'all' then
  chosen = redis.call('XRANGE', dlq, '-', '+')
else
  local seen = {}
  for i = 4, #ARGV do
    local id = ARGV[i]
    if not seen[id] then
      seen[id] = true
      local entry = string.match(id, '^%d+%-%d+$') and redis.call('XRANGE', dlq, id, id)[1]
      if not entry then return fail('EPNODEAD', id) end
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

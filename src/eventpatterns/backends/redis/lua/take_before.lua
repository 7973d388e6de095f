-- The receive transaction, part 1 of 3 (then a plain XREADGROUP, then take_after.lua).
-- KEYS: log, groups, due, att, held, meta.  ARGV: group, now, ids to acknowledge first
-- Returns the log's epoch (go on: the XREADGROUP that follows reads new entries), or 1
-- (redeliveries are due: the cursor is parked so that the XREADGROUP reads nothing,
-- and the client runs receive.lua).
local log, groups, due, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[6]
local group = ARGV[1]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
ack_ids(log, group, due, KEYS[4], KEYS[5], ARGV[3])
if #redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[2], 'LIMIT', 0, 1) > 0 then
  -- Park the group's cursor at the end of the log; take_after.lua puts it back.
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', log)) do
    local f = {}
    for j = 1, #info, 2 do f[info[j]] = info[j + 1] end
    if f['name'] == group then
      local read = f['entries-read']
      -- HSETNX: a park left by a transaction that failed half-way (see recover.lua)
      -- holds the real cursor; the cursor now is the end of the log.
      redis.call('HSETNX', groups, group .. ':park',
                 f['last-delivered-id'] .. '|' .. (read and tostring(read) or ''))
      redis.call('XGROUP', 'SETID', log, group, '$')
    end
  end
  redis.call('HDEL', groups, group .. ':mark')  -- take_after.lua: no batch to record
  return 1
end
count_skipped(groups, group, meta)
-- The entries the XREADGROUP delivers are new to the PEL and above all of it: the
-- PEL's size and top now tell take_after.lua which they were.
local pel = redis.call('XPENDING', log, group)
redis.call('HSET', groups, group .. ':mark', pel[1] .. '|' .. (pel[3] or ''))
return redis.call('HGET', meta, 'epoch') or ''

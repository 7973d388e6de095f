-- The receive transaction, part 3 of 3: give the batch just read its deadline.
-- KEYS: log, groups, due.  ARGV: group, deadline
-- Returns {} after a batch, else {next_due or '', last id of the log} (for the wait).
local log, groups, due = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
unpark(log, groups, group)
local mark = redis.call('HGET', groups, group .. ':mark')
if not mark then return {} end  -- take_before.lua parked the cursor, or failed
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

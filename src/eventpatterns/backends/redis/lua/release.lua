-- Make a delivery receivable again at due_at, keeping its error.
-- KEYS: log, groups, due, att.  ARGV: group, id, due_at, error
-- Returns 1, or 0 when the delivery is not pending (acked meanwhile).
local log, groups, due, att = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, id = ARGV[1], ARGV[2]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
if not redis.call('ZSCORE', due, id) and not pending(log, group, id) then return 0 end
redis.call('ZADD', due, ARGV[3], id)
redis.call('HSET', att, id .. ':e', ARGV[4])
return 1

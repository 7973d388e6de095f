-- After a receive transaction in which take_before.lua or take_after.lua failed with
-- NOSCRIPT: whatever ran, leave the group as if both had. The cursor is never left
-- parked; the entries the XREADGROUP delivered (first id, last id, count) get their
-- deadline; the acks and the count of skipped entries are done if take_before.lua
-- did not run.
-- KEYS: log, groups, due, att, held, meta.
-- ARGV: group, deadline, ids to acknowledge, '1' if take_before.lua ran else '',
--       first id, last id, count
-- Returns {next_due or '', last id of the log, epoch}.
local log, groups, due, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[6]
local group = ARGV[1]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
unpark(log, groups, group)
redis.call('HDEL', groups, group .. ':mark')
if ARGV[4] == '' then
  ack_ids(log, group, due, KEYS[4], KEYS[5], ARGV[3])
  count_skipped(groups, group, meta)  -- as before the read: it is not counted yet
end
local n = tonumber(ARGV[7])
if n > 0 then
  record_batch(due, groups, group, ARGV[2], ARGV[5], ARGV[6], n)
end
local info = wait_info(log, due)
info[3] = redis.call('HGET', meta, 'epoch') or ''
return info

-- Move a pending delivery to the group's dead letters, and ack it.
-- KEYS: log, groups, due, att, held, dlq, meta.  ARGV: group, id, error, failed_at
-- Returns {dead letter id, event json, attempts, epoch}.
-- Errors: EPNOGROUP, EPNOTPENDING <id>, EPTRIMMED <id> (retention removed the entry).
local log, groups, due, att, held, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, id = ARGV[1], ARGV[2]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
local json = redis.call('HGET', held, id)
if not json then
  if not pending(log, group, id) then return fail('EPNOTPENDING', id) end
  json = payload(log, id)
end
local attempts = redis.call('HGET', att, id) or '1'
redis.call('XACK', log, group, id)
redis.call('ZREM', due, id)
redis.call('HDEL', att, id, id .. ':e')
redis.call('HDEL', held, id)
if not json then
  redis.call('HINCRBY', groups, group .. ':lost', 1)
  return fail('EPTRIMMED', id)
end
local dead = redis.call('XADD', dlq, '*', 'p', id, 'e', json, 'r', ARGV[3],
                        'a', attempts, 't', ARGV[4])
return {dead, json, attempts, redis.call('HGET', KEYS[7], 'epoch') or ''}

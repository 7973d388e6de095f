-- Create a job, atomically with its idempotency check.
-- KEYS: 1 job hash, 2 owner's all-jobs zset, 3 owner's pending zset, 4 idempotency hash
--       (the job hash again when there is no key), 5 deadlines zset, 6 due zset
-- ARGV: 1 job JSON, 2 id, 3 owner, 4 created_at, 5 deadline or "", 6 "1" if keyed, 7 now,
--       8 run_after or "" (when to dispatch again if no worker started it)
-- Reply: {"OK"} | {"IDEM", id of the owner's live job with that key} | {"EXISTS", version}
local now = tonumber(ARGV[7])
local function live(key)
  local e = redis.call('HGET', key, 'e')
  return not (e and e ~= '' and tonumber(e) <= now)
end
if ARGV[6] == '1' then
  local other = redis.call('HGET', KEYS[4], 'id')
  if other and live(KEYS[4]) then
    return {'IDEM', other}
  end
end
local version = redis.call('HGET', KEYS[1], 'v')
if version and live(KEYS[1]) then
  return {'EXISTS', version}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', '1', 'j', ARGV[1], 'o', ARGV[3], 's', 'pending',
  'c', ARGV[4], 'e', '')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
end
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[2])
end
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], 'id', ARGV[2], 'e', '')
end
return {'OK'}

-- Write a job's next version if the stored one is the expected one (compare-and-swap).
-- KEYS: 1 job hash, 2..7 the owner's zsets per state (pending, running, retrying,
--       succeeded, failed, cancelled), 8 idempotency hash (the job hash when no key),
--       9 leases zset, 10 due zset, 11 deadlines zset, 12 expiry zset
-- ARGV: 1 expected version, 2 new version, 3 job JSON, 4 new state, 5 lease_until or "",
--       6 run_after or "", 7 deadline or "" (none once final; "-": the job has none),
--       8 expires_at or "",
--       9 now, 10 "1" if keyed, 11 id, 12 owner, 13 backstop TTL in ms (0: none),
--       14 (optional) a channel to PUBLISH the id on once written, or "" (the store's
--       cancel channel, for a running job whose cancellation is requested)
-- Reply: {"OK"} | {"NOTFOUND"} | {"CONFLICT", stored version} | {"IMMUTABLE"}
local now = tonumber(ARGV[9])
local stored = redis.call('HMGET', KEYS[1], 'v', 'e', 's', 'o', 'c')
if not stored[1] then return {'NOTFOUND'} end
if stored[2] and stored[2] ~= '' and tonumber(stored[2]) <= now then return {'NOTFOUND'} end
if stored[1] ~= ARGV[1] then return {'CONFLICT', stored[1]} end
if stored[4] ~= ARGV[12] then return {'IMMUTABLE'} end
local index = {pending = 2, running = 3, retrying = 4, succeeded = 5, failed = 6, cancelled = 7}
local id = ARGV[11]
if stored[3] ~= ARGV[4] then
  redis.call('ZREM', KEYS[index[stored[3]]], id)
  redis.call('ZADD', KEYS[index[ARGV[4]]], stored[5], id)
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'j', ARGV[3], 's', ARGV[4], 'e', ARGV[8])
-- Each index holds the job only in some states (leases: running; due: pending, retrying;
-- expiry: final; deadlines: not final, when it has one): a ZREM is sent only where the
-- stored state may have put it.
local was = stored[3]
local function place(key, score, held)
  if score ~= '' then
    redis.call('ZADD', key, score, id)
  elseif held then
    redis.call('ZREM', key, id)
  end
end
place(KEYS[9], ARGV[5], was == 'running')
place(KEYS[10], ARGV[6], was == 'pending' or was == 'retrying')
if ARGV[7] ~= '-' then place(KEYS[11], ARGV[7], true) end
place(KEYS[12], ARGV[8], was == 'succeeded' or was == 'failed' or was == 'cancelled')
local backstop = tonumber(ARGV[13])
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[8], 'e', ARGV[8])
  if backstop > 0 then redis.call('PEXPIRE', KEYS[8], backstop) end
end
if backstop > 0 then redis.call('PEXPIRE', KEYS[1], backstop) end
if ARGV[14] and ARGV[14] ~= '' then redis.call('PUBLISH', ARGV[14], id) end
return {'OK'}

-- Delete one expired job and its index entries (if it is still expired).
-- KEYS: 1 job hash, 2 owner's all-jobs zset, 3 owner's zset of its state,
--       4 idempotency hash (the job hash when no key), 5 expiry zset
-- ARGV: 1 id, 2 now, 3 "1" if keyed
-- Reply: 1 if deleted, 0 otherwise
local e = redis.call('HGET', KEYS[1], 'e')
redis.call('ZREM', KEYS[5], ARGV[1])
if e and (e == '' or tonumber(e) > tonumber(ARGV[2])) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[3] == '1' and redis.call('HGET', KEYS[4], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[4])
end
return e and 1 or 0

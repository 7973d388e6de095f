-- List push dead letters oldest first (RedisPushDeadLetters.list).
-- KEYS[1]: the ZSET to read (all, or one user's), KEYS[2]: HASH id -> JSON.
-- ARGV[1]: the most to return. Returns their JSON.
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))

-- Store a push dead letter (RedisPushDeadLetters.add), in order, indexed by user.
-- KEYS[1]: ZSET id -> sequence (all), KEYS[2]: HASH id -> JSON, KEYS[3]: the sequence
-- counter, KEYS[4]: the user's ZSET id -> sequence. ARGV[1]: id, ARGV[2]: JSON.
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], 'NX', seq, ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', seq, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return seq

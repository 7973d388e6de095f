-- join: ARGV[4] channel, ARGV[5] member, ARGV[6] connection, ARGV[7] info JSON,
-- ARGV[8] deadline. Reply: 1 when it was the member's first connection (join published).
sweep()
local channel, member, conn = ARGV[4], ARGV[5], ARGV[6]
local field = member .. '\n' .. conn
local new = redis.call('HSET', base .. 'ch:' .. channel, field, ARGV[7])
redis.call('ZADD', due, ARGV[8], channel .. '\n' .. field)
if new == 0 then return 0 end
redis.call('SADD', base .. 'conn:' .. conn, channel .. '\n' .. member)
if redis.call('HINCRBY', base .. 'n:' .. channel, member, 1) > 1 then return 0 end
publish('join', channel, member, conn, ARGV[7], false)
return 1

-- Record that a device was seen (last_seen never moves back).
-- ARGV: 2 id, 3 now
-- Reply: 1 if the device exists, 0 otherwise
local last = redis.call('HGET', dkey(ARGV[2]), 's')
if not last then return 0 end
if tonumber(ARGV[3]) > tonumber(last) then
  redis.call('HSET', dkey(ARGV[2]), 's', ARGV[3])
  redis.call('ZADD', seen, ARGV[3], ARGV[2])
end
return 1

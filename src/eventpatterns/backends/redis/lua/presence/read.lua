-- read: ARGV[4] channel, ARGV[5] "members" or "count".
-- Reply: {1} when more expired memberships are due (call again), else
-- {0, HGETALL of the channel} or {0, member count}.
local _, more = sweep()
if more then return {1} end
if ARGV[5] == 'count' then
  return {0, redis.call('HLEN', base .. 'n:' .. ARGV[4])}
end
return {0, redis.call('HGETALL', base .. 'ch:' .. ARGV[4])}

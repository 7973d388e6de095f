-- heartbeat: ARGV[4] connection, ARGV[5] deadline.
-- Reply: how many memberships got the new deadline (0: none left, join again).
sweep()
local conn = ARGV[4]
local items = redis.call('SMEMBERS', base .. 'conn:' .. conn)
for _, item in ipairs(items) do
  local channel, member = split(item)
  if channel then
    redis.call('ZADD', due, 'XX', ARGV[5], channel .. '\n' .. member .. '\n' .. conn)
  end
end
return #items

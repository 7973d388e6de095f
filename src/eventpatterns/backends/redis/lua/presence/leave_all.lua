-- leave_all: ARGV[4] connection. Reply: how many members left (leaves published).
sweep()
local conn = ARGV[4]
local items = redis.call('SMEMBERS', base .. 'conn:' .. conn)
table.sort(items)
local left = 0
for _, item in ipairs(items) do
  local channel, member = split(item)
  if channel then left = left + remove(channel, member, conn, false) end
end
redis.call('DEL', base .. 'conn:' .. conn)
return left

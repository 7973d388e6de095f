-- Remove devices last seen before a time, oldest first.
-- ARGV: 2 the time, 3 the most to remove
-- Reply: how many were removed
local ids = redis.call('ZRANGE', seen, '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local owner = redis.call('HGET', dkey(id), 'u')
  if owner then drop(id, owner) else redis.call('ZREM', seen, id) end
end
return #ids

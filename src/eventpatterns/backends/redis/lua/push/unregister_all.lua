-- Remove every device of a user.
-- ARGV: 2 user
-- Reply: how many were removed
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', ukey(ARGV[2]))) do
  if redis.call('HGET', dkey(id), 'u') == ARGV[2] then
    redis.call('DEL', dkey(id))
    redis.call('ZREM', seen, id)
    count = count + 1
  end
end
redis.call('DEL', ukey(ARGV[2]))
return count

-- Remove push dead letters (RedisPushDeadLetters.discard); returns how many existed.
-- KEYS[1]: ZSET id -> sequence (all), KEYS[2]: HASH id -> JSON. ARGV[1]: the base of
-- the users' ZSETs (base .. user, in the same slot), ARGV[2...]: the ids.
local removed = 0
for i = 2, #ARGV do
  local json = redis.call('HGET', KEYS[2], ARGV[i])
  if json then
    local user = cjson.decode(json)['u']
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', ARGV[1] .. user, ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    removed = removed + 1
  end
end
return removed

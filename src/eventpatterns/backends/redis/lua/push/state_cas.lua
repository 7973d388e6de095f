-- Compare-and-set a user's fatigue state (RedisDispatchState.update_fatigue).
-- KEYS[1]: the state (JSON STRING). ARGV[1]: the JSON read ('' = none), ARGV[2]: the
-- JSON to store ('' = delete: nothing held, no budget used).
-- Returns 1 if stored, 0 if another process changed it since it was read.
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1

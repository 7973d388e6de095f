-- Claim an idempotency key (RedisDispatchState.claim), SET NX's check and write in one:
-- a key past its deadline on the callers' clock is claimable again.
-- KEYS[1]: the key ("nid deadline" STRING, with a PX expiry so Redis forgets it too).
-- ARGV[1]: notification id, ARGV[2]: now, ARGV[3]: deadline, ARGV[4]: expiry in ms.
-- Returns the holder's notification id, or nil when claimed now.
local held = redis.call('GET', KEYS[1])
if held then
  local sep = string.find(held, ' ', 1, true)
  if tonumber(string.sub(held, 1, sep - 1)) > tonumber(ARGV[2]) then
    return string.sub(held, sep + 1)
  end
end
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[1], 'PX', ARGV[4])
return false

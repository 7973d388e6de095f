-- Read many jobs in one step: each job hash's record and expiry.
-- KEYS: the job hashes.  ARGV: none.
-- Reply: {j, e} per key, flat (nil for a missing job)
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'j', 'e')
  out[2 * i - 1] = row[1]
  out[2 * i] = row[2]
end
return out

-- Replace the consented topics of a device the user holds.
-- ARGV: 2 id, 3 user, 4 topics JSON
-- Reply: the device's fields (helpers.lua's FIELDS), or false if the user holds no such device
local owner = redis.call('HGET', dkey(ARGV[2]), 'u')
if owner ~= ARGV[3] then return false end
redis.call('HSET', dkey(ARGV[2]), 'k', ARGV[4])
return read(ARGV[2])

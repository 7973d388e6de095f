-- Remove a device if the user holds it.
-- ARGV: 2 id, 3 user
-- Reply: 1 if removed, 0 if the user holds no such device
local owner = redis.call('HGET', dkey(ARGV[2]), 'u')
if owner ~= ARGV[3] then return 0 end
drop(ARGV[2], ARGV[3])
return 1

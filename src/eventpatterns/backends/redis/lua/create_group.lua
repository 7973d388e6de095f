-- Create a group (its registry entry and the Redis consumer group on the log).
-- KEYS: log, groups, meta.  ARGV: group, start id ('0' or '$'), now, epoch token
-- Returns {1 if created else 0, epoch}.
local log, groups, meta = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
local epoch = epoch_of(meta, ARGV[4])
if redis.call('HSETNX', groups, group, ARGV[3]) == 0 then return {0, epoch} end
-- 'latest' starts after every entry appended so far, 'earliest' after the trimmed ones.
local base = redis.call('HGET', meta, ARGV[2] == '$' and 'added' or 'dropped') or 0
redis.call('HSET', groups, group .. ':base', base, group .. ':read', 0)
-- An existing Redis group of that name (BUSYGROUP) is adopted as it is.
pcall(redis.call, 'XGROUP', 'CREATE', log, group, ARGV[2], 'MKSTREAM')
return {1, epoch}

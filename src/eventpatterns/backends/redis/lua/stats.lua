-- The counters of one group.
-- KEYS: log, groups, held, dlq, meta.  ARGV: group
-- Returns {base, read, skipped, lost, reclaimed, added, dead letters, redriven, pending}.
local g = ARGV[1]
local c = redis.call('HMGET', KEYS[2], g, g .. ':base', g .. ':read', g .. ':skipped',
                     g .. ':lost', g .. ':reclaimed')
if not c[1] then return fail('EPNOGROUP', g) end
local added = redis.call('HGET', KEYS[5], 'added')
return {tonumber(c[2] or 0), tonumber(c[3] or 0), tonumber(c[4] or 0), tonumber(c[5] or 0),
        tonumber(c[6] or 0), tonumber(added or 0), redis.call('XLEN', KEYS[4]),
        redis.call('HLEN', KEYS[3]), redis.call('XPENDING', KEYS[1], g)[1]}

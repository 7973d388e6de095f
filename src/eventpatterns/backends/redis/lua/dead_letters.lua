-- List dead letters, oldest first.
-- KEYS: groups, dlq, meta.  ARGV: group, count
-- Returns {epoch, {dead letter id, {p, position, e, json, r, error, a, attempts, t, at}}*}.
if not has_group(KEYS[1], ARGV[1]) then return fail('EPNOGROUP', ARGV[1]) end
return {redis.call('HGET', KEYS[3], 'epoch') or '',
        redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[2])}

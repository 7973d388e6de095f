-- Acknowledge deliveries.
-- KEYS: log, groups, due, att, held.  ARGV: group, ids (comma-separated, may be '')
-- Returns how many were pending.
if not has_group(KEYS[2], ARGV[1]) then return fail('EPNOGROUP', ARGV[1]) end
return ack_ids(KEYS[1], ARGV[1], KEYS[3], KEYS[4], KEYS[5], ARGV[2])

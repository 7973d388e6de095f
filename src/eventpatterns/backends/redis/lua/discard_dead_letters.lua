-- Delete dead letters for good; every id is checked first.
-- KEYS: groups, dlq.  ARGV: group, mode ('all' | 'ids'), id*
-- Returns how many. Errors: EPNOGROUP, EPNODEAD <id> (nothing is deleted).
local groups, dlq = KEYS[1], KEYS[2]
local group = ARGV[1]
if not has_group(groups, group) then return fail('EPNOGROUP', group) end
if ARGV[2] == 'all' then
  local n = redis.call('XLEN', dlq)
  redis.call('DEL', dlq)
  return n
end
local ids, seen = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    if not (string.match(id, '^%d+%-%d+$') and redis.call('XRANGE', dlq, id, id)[1]) then
      return fail('EPNODEAD', id)
    end
    ids[#ids + 1] = id
  end
end
if #ids == 0 then return 0 end
return redis.call('XDEL', dlq, unpack(ids))

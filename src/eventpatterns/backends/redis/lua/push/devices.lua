-- Read every device of a user, in one consistent snapshot.
-- ARGV: 2 user
-- Reply: {id, fields..., id, fields...} with the fields of helpers.lua's FIELDS
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', ukey(ARGV[2]))) do
  local fields = read(id)
  if fields and fields[1] == ARGV[2] then
    out[#out + 1] = id
    for _, value in ipairs(fields) do out[#out + 1] = value end
  end
end
return out

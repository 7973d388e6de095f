-- Register a device for a user: create it, update it, or move it from another user.
-- ARGV: 2 id, 3 user, 4 now, 5 registration JSON, 6 topics JSON, 7 max devices per user
-- Reply: {"OK", created_at, registered_at, last_seen} | {"LIMIT"} (nothing changed)
local id, user, now = ARGV[2], ARGV[3], ARGV[4]
local old = read(id)
local created, registered, last = now, now, now
if old and old[1] == user then
  created = old[2]
elseif redis.call('SCARD', ukey(user)) >= tonumber(ARGV[7]) then
  return {'LIMIT'}
elseif old then
  redis.call('SREM', ukey(old[1]), id)  -- the token moves: its old owner loses it
end
if old then  -- times never move back (processes' clocks differ a little)
  if tonumber(old[3]) > tonumber(now) then registered = old[3] end
  if tonumber(old[4]) > tonumber(now) then last = old[4] end
end
redis.call('HSET', dkey(id), 'u', user, 'c', created, 'r', registered, 's', last,
  'j', ARGV[5], 'k', ARGV[6])
redis.call('SADD', ukey(user), id)
redis.call('ZADD', seen, last, id)
return {'OK', created, registered, last}

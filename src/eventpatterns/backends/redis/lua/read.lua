-- Read a page of the log after a position, checking the position first.
-- KEYS: log, meta.
-- ARGV: epoch token, the position's epoch and stream id ('' and '': from the oldest
--       retained entry), count
-- Returns {epoch, newest trimmed id or '', (id, json)*}.
-- Errors: EPSTALE <epoch now>, EPBEYOND <id>, EPEXPIRED <oldest position or '-'>.
local log, meta = KEYS[1], KEYS[2]
local epoch = epoch_of(meta, ARGV[1])
local trimmed = redis.call('HGET', meta, 'trimmed') or ''
local start = '-'
if ARGV[2] ~= '' then
  local after = ARGV[3]
  if ARGV[2] ~= epoch then return fail('EPSTALE', epoch) end
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if not last or id_before(last[1], after) then return fail('EPBEYOND', after) end
  if trimmed ~= '' and id_before(after, trimmed) then
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    return fail('EPEXPIRED', first and (epoch .. ':' .. first[1]) or '-')
  end
  start = '(' .. after
end
local out = {epoch, trimmed}
for _, entry in ipairs(redis.call('XRANGE', log, start, '+', 'COUNT', ARGV[4])) do
  out[#out + 1] = entry[1]; out[#out + 1] = field(entry[2], 'e') or ''
end
return out

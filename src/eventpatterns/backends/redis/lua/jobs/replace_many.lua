-- Many compare-and-swap writes in one step: replace.lua (embedded as job_script) per job,
-- each on its own (one refused leaves the others written), then one append of the events
-- of the jobs written (append.lua, embedded as bus_append) when announcing.
-- KEYS: per job its replace.lua keys (NK of them), then, when announcing, append.lua's:
--       log, meta, one dedupe key per job
-- ARGV: 1 n jobs, 2 NK, 3 NA (replace.lua's argument count), 4 "1" if announcing,
--       then per job its NA replace.lua arguments, then, when announcing, append.lua's
--       5 header arguments and (event id, event JSON) per job (an empty id: no event)
-- Reply: {status, detail} per job, flat (replace.lua's reply; detail "" when it has
--        none), then, when an event was appended, append.lua's reply
local n, nk, na = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local announce = ARGV[4] == '1'
local jobs_end = 4 + n * na
local bk = {KEYS[n * nk + 1], KEYS[n * nk + 2]}
local ba = {}
if announce then
  for h = 1, 5 do ba[h] = ARGV[jobs_end + h] end
end
local out = {}
for i = 0, n - 1 do
  local jk, ja = {}, {}
  for k = 1, nk do jk[k] = KEYS[i * nk + k] end
  for a = 1, na do ja[a] = ARGV[4 + i * na + a] end
  local reply = job_script(jk, ja)
  out[#out + 1] = reply[1]
  out[#out + 1] = reply[2] or ''
  local event_id = ARGV[jobs_end + 6 + 2 * i]
  if announce and reply[1] == 'OK' and event_id ~= '' then
    bk[#bk + 1] = KEYS[n * nk + 3 + i]
    ba[#ba + 1] = event_id
    ba[#ba + 1] = ARGV[jobs_end + 7 + 2 * i]
  end
end
if #bk > 2 then out[#out + 1] = bus_append(bk, ba) end
return out

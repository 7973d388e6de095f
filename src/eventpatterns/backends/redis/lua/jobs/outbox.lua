-- The outbox: run a job script (create or replace), then, when it wrote the job, append
-- the job's event to the bus's log in the same step (the bus's append.lua, embedded as
-- bus_append), so that the job's new state and its announcement are stored together.
-- KEYS: the job script's keys, then append.lua's (log, meta, one dedupe key per event)
-- ARGV: 1 how many of KEYS are the job script's, 2 how many of the rest of ARGV are its
--       arguments, then its arguments, then append.lua's
-- Reply: the job script's reply; after "OK" it ends with append.lua's reply
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local jk, ja, bk, ba = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= nk then jk[#jk + 1] = KEYS[i] else bk[#bk + 1] = KEYS[i] end
end
for i = 3, #ARGV do
  if i <= na + 2 then ja[#ja + 1] = ARGV[i] else ba[#ba + 1] = ARGV[i] end
end
local reply = job_script(jk, ja)
if reply[1] == 'OK' then reply[#reply + 1] = bus_append(bk, ba) end
return reply

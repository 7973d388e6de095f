-- Create several jobs in one step (submits that came together), each as create.lua does
-- (embedded as job_script), and append the events of those created, in order, with one
-- call of the bus's append.lua (embedded as bus_append; the outbox).
-- KEYS: 1 log, 2 meta (touched only when an event is appended), then per job its six
--       create.lua keys and, when it is announced, its event's dedupe key
-- ARGV: 1 how many jobs, 2..6 append.lua's first five arguments, then per job: "1" if it
--       is announced (else "0"), its eight create.lua arguments, and when announced its
--       event's id and JSON
-- Reply: create.lua's reply per job; then, when an event was appended, append.lua's reply
local n = tonumber(ARGV[1])
local k, a = 3, 7
local replies = {}
local bk = {KEYS[1], KEYS[2]}
local ba = {ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]}
for j = 1, n do
  local announced = ARGV[a] == '1'
  local jk = {KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]}
  local ja = {ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6],
              ARGV[a + 7], ARGV[a + 8]}
  k, a = k + 6, a + 9
  local reply = job_script(jk, ja)
  replies[j] = reply
  if announced then
    if reply[1] == 'OK' then
      bk[#bk + 1] = KEYS[k]
      ba[#ba + 1] = ARGV[a]
      ba[#ba + 1] = ARGV[a + 1]
    end
    k, a = k + 1, a + 2
  end
end
if #bk > 2 then replies[n + 1] = bus_append(bk, ba) end
return replies

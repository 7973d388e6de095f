-- Remove a device unless it was registered after a timestamp (the APNs 410 rule).
-- ARGV: 2 id, 3 timestamp
-- Reply: 1 if removed, 0 if kept or missing
local fields = read(ARGV[2])
if not fields or tonumber(fields[3]) > tonumber(ARGV[3]) then return 0 end
drop(ARGV[2], fields[1])
return 1

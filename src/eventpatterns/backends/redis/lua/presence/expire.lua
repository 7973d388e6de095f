-- expire: no more ARGV. Reply: {members that left, 1 if more may be due else 0}.
local left, more = sweep()
return {left, more and 1 or 0}

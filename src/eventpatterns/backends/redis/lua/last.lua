-- The newest position of the log.
-- KEYS: log, meta.  ARGV: epoch token
-- Returns {epoch, newest stream id or ''}.
local epoch = epoch_of(KEYS[2], ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return {epoch, last and last[1] or ''}

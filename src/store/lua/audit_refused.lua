-- Counts a refused request (401/403) from one address in one minute; the first of the minute
-- is an audit entry, the rest only counted, so a flood of bad requests cannot fill Redis.
-- KEYS[1] the address-and-minute counter   KEYS[2] the audit chain
-- ARGV[1] the entry's JSON   ARGV[2] the counter's lifetime (s)
-- Returns the count so far this minute.
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  audit(KEYS[2], ARGV[1], 'refused')
end
return n

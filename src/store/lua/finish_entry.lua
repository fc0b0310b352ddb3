-- Acknowledges a delivery entry and, only when this acknowledgement takes (the entry was still
-- pending), schedules its retry through the delayed set. Run again after a lost answer — even
-- after `promote_due.lua` has already moved the retry on — it schedules nothing twice.
-- KEYS[1] partition delivery stream   KEYS[2] partition delayed set
-- ARGV[1] consumer group   ARGV[2] entry id   ARGV[3] retry due time (ms; '' for none)
-- ARGV[4] the retry: a JSON array of the entry's field names and values
-- Returns 1 if the entry was acknowledged now, 0 if it was already.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 and ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
return acked

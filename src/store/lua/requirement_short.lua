-- The ladder of a requirement is exhausted and its headcount unmet: it is `short`. Unanswered
-- callouts become `silent` (they can still accept, and the requirement fills if enough do),
-- and one alert per command centre is enqueued for the notifier, in the same step, so the
-- shortfall is either not declared or declared and sure to be reported (retried until sent).
-- Idempotent: only the first call reports the shortfall.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] requirement   ARGV[2] now   ARGV[3] incident id   ARGV[4..] regions to alert
-- Returns {needed, taken} the first time, {} when filled, already short, or closed.
local req = ARGV[1]
local status = redis.call('HGET', BASE, 'status')
if not status or status == 'stood_down' or status == 'closed' then return {} end
local c = redis.call('HMGET', COUNTS, req .. ':needed', req .. ':accepted', req .. ':arrived', req .. ':short')
local needed, taken = tonumber(c[1] or '0'), tonumber(c[2] or '0') + tonumber(c[3] or '0')
if taken >= needed or c[4] then return {} end
silence(req, ARGV[2])
redis.call('HSET', COUNTS, req .. ':short', ARGV[2])
event('type', 'requirement.short', 'at', ARGV[2], 'requirement', req, 'needed', needed, 'taken', taken)
redis.call('XADD', BUS, '*', 'type', 'requirement.short', 'incident', ARGV[3], 'requirement', req)
for i = 4, #ARGV do
  redis.call('XADD', DELIVERIES, '*', 'i', ARGV[3], 'k', 'alert', 'r', req, 'g', ARGV[i],
    'nd', needed, 'tk', taken, 'a', 1)
end
return {needed, taken}

-- A gateway's delivery receipt for one SMS: the callout's delivery state moves forward only
-- (sent → undelivered → delivered), never touching its answer state.
-- KEYS[1] incident base key   ARGV[1] n   ARGV[2] status   ARGV[3] now   ARGV[4] gateway
-- Returns 1 when the state changed.
local co = KEYS[1] .. ':co:' .. ARGV[1]
local rank = {sent = 1, undelivered = 2, delivered = 3}
local cur = redis.call('HGET', co, 'dl')
if redis.call('EXISTS', co) == 0 then return 0 end
if cur and (rank[cur] or 0) >= (rank[ARGV[2]] or 0) then return 0 end
redis.call('HSET', co, 'dl', ARGV[2], 'dl_at', ARGV[3])
event(KEYS[1], 'type', 'callout.sms_' .. ARGV[2], 'at', ARGV[3], 'n', ARGV[1], 'gateway', ARGV[4])
return 1

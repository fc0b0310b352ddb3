-- Stands an incident down: from now on its tokens are dead and no callout is sent.
-- KEYS[1] incident base key   KEYS[2] partition bus stream   KEYS[3] audit chain
-- ARGV[1] id   ARGV[2] now   ARGV[3] by (token name)   ARGV[4] audit entry JSON
-- Returns 'unknown' | 'already' | 'ok'.
local base = KEYS[1]
local status = redis.call('HGET', base, 'status')
if not status then return 'unknown' end
if status == 'stood_down' or status == 'closed' then return 'already' end
redis.call('HSET', base, 'status', 'stood_down', 'stood_down_at', ARGV[2], 'stood_down_by', ARGV[3])
event(base, 'type', 'incident.stood_down', 'at', ARGV[2], 'by', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'type', 'incident.stood_down', 'incident', ARGV[1])
audit(KEYS[3], ARGV[4], 'ok')
return 'ok'

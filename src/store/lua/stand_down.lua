-- Stands an incident down: from now on its tokens are dead and no callout is sent.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] id   ARGV[2] now   ARGV[3] by (token name)   ARGV[4] audit entry JSON
-- Returns 'unknown' | 'already' | 'ok'.
local status = redis.call('HGET', BASE, 'status')
if not status then return 'unknown' end
if status == 'stood_down' or status == 'closed' then return 'already' end
redis.call('HSET', BASE, 'status', 'stood_down', 'stood_down_at', ARGV[2], 'stood_down_by', ARGV[3])
event('type', 'incident.stood_down', 'at', ARGV[2], 'by', ARGV[3])
redis.call('XADD', BUS, '*', 'type', 'incident.stood_down', 'incident', ARGV[1])
audit(AUDIT, ARGV[4], 'ok')
return 'ok'

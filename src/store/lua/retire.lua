-- Retires a stood-down incident past its retention: its per-callout keys (each callout, who
-- was called, the selections, the claims, the event stream, the standby and requirement
-- lists) go; the incident hash stays with its final report (`report`), its counts stay, and it
-- is `closed`. Service records and audit entries are elsewhere and stay. Once.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] now (ms)   ARGV[2] the report (JSON)   ARGV[3] audit entry JSON
-- Returns the number of callouts removed, or -1 when it was not a stood-down incident.
local st = redis.call('HGET', BASE, 'status')
if st ~= 'stood_down' then return -1 end
local seq = tonumber(redis.call('HGET', BASE, 'seq') or '0')
redis.call('DEL', CO, CALLED, SEL, CLAIMS, EVENTS, RCO, STANDBY)
redis.call('HSET', BASE, 'status', 'closed', 'closed_at', ARGV[1], 'report', ARGV[2])
audit(AUDIT, ARGV[3], 'ok')
return seq

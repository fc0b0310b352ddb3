-- Retires a stood-down incident past its retention: its per-callout keys (each callout, who
-- was called, the selections, the claims, the event stream, the standby and requirement
-- lists) go; the incident hash stays with its final report (`report`), its counts stay, and it
-- is `closed`. Service records and audit entries are elsewhere and stay. Once.
-- KEYS[1] incident base key   KEYS[2] audit chain
-- ARGV[1] now (ms)   ARGV[2] the report (JSON)   ARGV[3] audit entry JSON   ARGV[4..] requirement ids
-- Returns the number of callouts removed, or -1 when it was not a stood-down incident.
local base = KEYS[1]
local st = redis.call('HGET', base, 'status')
if st ~= 'stood_down' then return -1 end
local seq = tonumber(redis.call('HGET', base, 'seq') or '0')
for n = 1, seq do redis.call('DEL', base .. ':co:' .. n) end
redis.call('DEL', base .. ':called', base .. ':sel', base .. ':claims', base .. ':events')
for i = 4, #ARGV do
  redis.call('DEL', base .. ':rco:' .. ARGV[i], base .. ':standby:' .. ARGV[i])
end
redis.call('HSET', base, 'status', 'closed', 'closed_at', ARGV[1], 'report', ARGV[2])
audit(KEYS[2], ARGV[3], 'ok')
return seq

-- Raises an incident unless one with this id exists (idempotency).
-- KEYS: the incident set (incident.lua)
-- ARGV[1] id   ARGV[2] fingerprint of the request   ARGV[3] now (ms)
-- ARGV[4] JSON object of incident fields   ARGV[5] JSON object of counter fields
-- ARGV[6] audit entry JSON
-- Returns {1, fingerprint} when created, {0, existing fingerprint} when it existed.
if redis.call('EXISTS', BASE) == 1 then
  return {0, redis.call('HGET', BASE, 'fingerprint') or ''}
end
local fields = {'fingerprint', ARGV[2]}
for k, v in pairs(cjson.decode(ARGV[4])) do
  fields[#fields + 1] = k
  fields[#fields + 1] = tostring(v)
end
redis.call('HSET', BASE, unpack(fields))
local counts = {}
for k, v in pairs(cjson.decode(ARGV[5])) do
  counts[#counts + 1] = k
  counts[#counts + 1] = tostring(v)
end
if #counts > 0 then redis.call('HSET', COUNTS, unpack(counts)) end
event('type', 'incident.raised', 'at', ARGV[3])
redis.call('XADD', BUS, '*', 'type', 'incident.raised', 'incident', ARGV[1])
audit(AUDIT, ARGV[6], 'ok')
return {1, ARGV[2]}

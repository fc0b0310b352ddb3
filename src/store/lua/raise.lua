-- Raises an incident unless one with this id exists (idempotency).
-- KEYS[1] incident base key   KEYS[2] partition bus stream   KEYS[3] audit chain
-- ARGV[1] id   ARGV[2] fingerprint of the request   ARGV[3] now (ms)
-- ARGV[4] JSON object of incident fields   ARGV[5] JSON object of counter fields
-- ARGV[6] audit entry JSON
-- Returns {1, fingerprint} when created, {0, existing fingerprint} when it existed.
local base = KEYS[1]
if redis.call('EXISTS', base) == 1 then
  return {0, redis.call('HGET', base, 'fingerprint') or ''}
end
local fields = {'fingerprint', ARGV[2]}
for k, v in pairs(cjson.decode(ARGV[4])) do
  fields[#fields + 1] = k
  fields[#fields + 1] = tostring(v)
end
redis.call('HSET', base, unpack(fields))
local counts = {}
for k, v in pairs(cjson.decode(ARGV[5])) do
  counts[#counts + 1] = k
  counts[#counts + 1] = tostring(v)
end
if #counts > 0 then redis.call('HSET', base .. ':counts', unpack(counts)) end
event(base, 'type', 'incident.raised', 'at', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'type', 'incident.raised', 'incident', ARGV[1])
audit(KEYS[3], ARGV[6], 'ok')
return {1, ARGV[2]}

-- Schedules a drill unless one with this id exists (idempotency).
-- A drill due now is claimed for firing by the request itself (the firing set, as
-- `drills_due.lua` would), so the request raises it and answers with its incident.
-- KEYS[1] the drill hash   KEYS[2] index of drills   KEYS[3] due set   KEYS[4] firing set
-- ARGV[1] id   ARGV[2] fingerprint   ARGV[3] at (ms)   ARGV[4] JSON object of its fields
-- ARGV[5] "1": claim it now, at wall time ARGV[6] (ms)
-- KEYS[5] audit chain   ARGV[7] audit entry JSON
-- Returns {1, fingerprint} when created, {0, existing fingerprint} when it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[1], 'fingerprint') or ''}
end
local fields = {'fingerprint', ARGV[2]}
for k, v in pairs(cjson.decode(ARGV[4])) do
  fields[#fields + 1] = k
  fields[#fields + 1] = tostring(v)
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'starting')
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
audit(KEYS[5], ARGV[7], 'ok')
return {1, ARGV[2]}

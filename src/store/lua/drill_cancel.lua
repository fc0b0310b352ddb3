-- Cancels a scheduled drill: only while it waits in the due set, so a drill that has begun
-- firing is never half cancelled.
-- KEYS[1] due set   KEYS[2] the drill hash
-- ARGV[1] id   ARGV[2] now (ms)   ARGV[3] by
-- KEYS[3] audit chain   ARGV[4] audit entry JSON
-- Returns "ok", or the drill's status when it could not be ("" when unknown).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'status', 'cancelled', 'cancelled_at', ARGV[2], 'cancelled_by', ARGV[3])
  audit(KEYS[3], ARGV[4], 'ok')
  return 'ok'
end
return redis.call('HGET', KEYS[2], 'status') or ''

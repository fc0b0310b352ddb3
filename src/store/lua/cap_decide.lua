-- Decides a pending CAP proposal once: `pending` becomes ARGV[1] (confirmed, rejected,
-- withdrawn) with who and when.
-- KEYS[1] the proposal hash   KEYS[2] audit chain
-- ARGV[1] new status   ARGV[2] by   ARGV[3] now (ms)   ARGV[4] audit entry JSON
-- Returns "ok", or the status it had ("" when unknown).
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'pending' then return st or '' end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decided_by', ARGV[2], 'decided_at', ARGV[3])
audit(KEYS[2], ARGV[4], 'ok')
return 'ok'

-- Changes a team's name and status, only while it exists (a team deleted meanwhile is not
-- brought back as a half record).
-- KEYS[1] the team's hash   KEYS[2] audit chain (optional)
-- ARGV[1] name   ARGV[2] status   ARGV[3] audit JSON
-- Returns 'ok' or 'gone'.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'status', ARGV[2])
audit(KEYS[2], ARGV[3], 'ok')
return 'ok'

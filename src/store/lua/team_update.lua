-- Changes a team's name and status, only while it exists (a team deleted meanwhile is not
-- brought back as a half record).
-- KEYS[1] the team's hash   ARGV[1] name   ARGV[2] status
-- Returns 'ok' or 'gone'.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'status', ARGV[2])
return 'ok'

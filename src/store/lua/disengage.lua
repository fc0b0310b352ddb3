-- Releases a claim set by engage.lua whose acceptance did not count (standby, refused, or a
-- repeated answer): only if it is still exactly the claim set, never a deployment recorded
-- since (a plain "n").
-- KEYS[1] the volunteer's deployments hash   ARGV[1] incident id   ARGV[2] the claim's value
-- Returns 1 when released.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0

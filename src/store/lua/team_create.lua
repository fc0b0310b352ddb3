-- Creates a team that does not exist yet: its hash and both indexes, atomically, so a second
-- create of the same id never overwrites the first (it is `exists`). The same create again
-- (a retry after a lost answer) is `ok`.
-- KEYS[1] the team's hash   KEYS[2] its region's team set   KEYS[3] the set of all teams
-- ARGV[1] id   ARGV[2] name   ARGV[3] kind   ARGV[4] region   ARGV[5] status
-- KEYS[4] audit chain (optional)   ARGV[6] audit JSON
-- Returns 'ok' or 'exists'.
local cur = redis.call('HMGET', KEYS[1], 'name', 'kind', 'region')
if cur[2] then
  if cur[1] == ARGV[2] and cur[2] == ARGV[3] and cur[3] == ARGV[4] then return 'ok' end
  return 'exists'
end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'kind', ARGV[3], 'region', ARGV[4], 'status', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
audit(KEYS[4], ARGV[6], 'ok')
return 'ok'

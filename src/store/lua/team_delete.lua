-- Deletes a team, atomically: its hash, roster and member set, both indexes, and the team in
-- every member's own list of teams — so no volunteer is left naming a team that is gone, and
-- no half-detached team survives a crash. The caller names the members it read; if the member
-- set differs now (someone joined or left meanwhile) it is `retry`.
-- KEYS[1] the team's hash   KEYS[2] its roster   KEYS[3] its member set
-- KEYS[4] its region's team set   KEYS[5] the set of all teams   KEYS[6] audit chain
-- KEYS[7..] the members' hashes
-- ARGV[1] team id   ARGV[2] audit JSON ('' none)   ARGV[3..] the members' ids (in the order
-- of KEYS[7..])
-- Returns 'ok', 'gone' or 'retry'.
local tid = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local given = #ARGV - 2
if redis.call('SCARD', KEYS[3]) ~= given then return 'retry' end
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[3], ARGV[i]) == 0 then return 'retry' end
end
for i = 7, #KEYS do
  local teams = redis.call('HGET', KEYS[i], 'teams')
  if teams then
    local kept = {}
    for t in string.gmatch(teams, '[^;]+') do
      if t ~= tid then kept[#kept + 1] = t end
    end
    redis.call('HSET', KEYS[i], 'teams', table.concat(kept, ';'))
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], tid)
redis.call('SREM', KEYS[5], tid)
audit(KEYS[6], ARGV[2], 'ok')
return 'ok'

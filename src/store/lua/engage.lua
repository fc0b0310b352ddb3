-- Claims a volunteer for a live incident before their acceptance is counted, so a volunteer
-- is never counted on two live incidents. The claim lives on the volunteer's own key (their
-- deployments hash, incident id → "n" once deployed, "n@ms" while an acceptance is under
-- way), which no incident's script can reach on a Cluster; so the caller checks the other
-- incidents the hash names, and this script sets the claim only if the hash names nothing the
-- caller has not checked — atomically, so two acceptances racing for one volunteer cannot both
-- pass: the second sees the first's claim and must check it.
-- KEYS[1] the volunteer's deployments hash
-- ARGV[1] incident id   ARGV[2] callout n   ARGV[3] now (ms)
-- ARGV[4..] pairs (incident, value) the caller checked and found not engaging the volunteer
-- Returns {'ok', '1'} (claimed now), {'ok', '0'} (this incident holds it already), or
-- {'check', inc, value, …}: other incidents the caller has not checked.
local all = redis.call('HGETALL', KEYS[1])
local checked = {}
for i = 4, #ARGV, 2 do checked[ARGV[i]] = ARGV[i + 1] end
local unchecked = {}
local mine = nil
for i = 1, #all, 2 do
  local inc, val = all[i], all[i + 1]
  if inc == ARGV[1] then
    mine = val
  elseif checked[inc] ~= val then
    unchecked[#unchecked + 1] = inc
    unchecked[#unchecked + 1] = val
  end
end
if #unchecked > 0 then return {'check', unpack(unchecked)} end
if mine then return {'ok', '0'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '@' .. ARGV[3])
return {'ok', '1'}

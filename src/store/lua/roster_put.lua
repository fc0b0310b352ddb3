-- Writes a team's roster if nobody changed it since the writer read it (compare-and-set on
-- its version), so two coordinators editing at once cannot silently overwrite each other.
-- KEYS[1] roster hash   KEYS[2] audit chain (optional)
-- ARGV[1] expected version (0: no roster yet)   ARGV[2] roster JSON   ARGV[3] audit JSON
-- Returns {1, new version} | {0, current version}.
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then return {0, ver} end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'ver', ver + 1)
audit(KEYS[2], ARGV[3], 'ok')
return {1, ver + 1}

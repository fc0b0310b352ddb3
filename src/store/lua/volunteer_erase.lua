-- Erases a volunteer's personal data, atomically: the hash keeps only `status = erased` and
-- the time; the phone index entry, the number's reply codes, the unavailability index entry,
-- their team memberships and every roster entry naming them go. A compare-and-set on the
-- teams and phone the caller read, and on the versions of those teams' rosters (`retry` when
-- any changed). Erasing again is `ok`.
-- KEYS[1] the volunteer's hash   KEYS[2] the phone index   KEYS[3] the number's reply codes
-- KEYS[4] the unavailability index   KEYS[5 .. 4+T] member sets of the T teams they are in
-- KEYS[5+T .. 4+2T] those teams' rosters
-- ARGV[1] id   ARGV[2] now (ms)   ARGV[3] the teams read   ARGV[4] the phone read   ARGV[5] T
-- ARGV[6 ..] per roster: the version read, the document without them ('' = none to change)
-- The last of KEYS is the audit chain and the last ARGV the entry's JSON.
-- Returns 'ok', 'gone' (no such volunteer) or 'retry'.
local vol, id = KEYS[1], ARGV[1]
local t = tonumber(ARGV[5])
local cur = redis.call('HMGET', vol, 'status', 'teams', 'phone')
if not cur[1] then return 'gone' end
if cur[1] == 'erased' then return 'ok' end
if (cur[2] or '') ~= ARGV[3] or (cur[3] or '') ~= ARGV[4] then return 'retry' end
if not rosters_unchanged(4 + t, 5, t) then return 'retry' end
redis.call('DEL', vol)
redis.call('HSET', vol, 'status', 'erased', 'erased_at', ARGV[2])
if cur[3] and redis.call('HGET', KEYS[2], cur[3]) == id then
  redis.call('HDEL', KEYS[2], cur[3])
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], id)
for i = 5, 4 + t do redis.call('SREM', KEYS[i], id) end
rosters_write(4 + t, 5, t)
audit(KEYS[#KEYS], ARGV[#ARGV], 'ok')
return 'ok'

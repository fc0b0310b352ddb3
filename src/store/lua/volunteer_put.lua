-- Creates or updates one volunteer, atomically: the record, the phone index (one volunteer per
-- number), and the member sets of the teams they join or leave — and only into teams that
-- exist at that instant, so a team deleted meanwhile is never joined.
-- An update is a compare-and-set: it applies only if the stored teams and phone are still
-- those the caller read (or already those it writes: a retry after a lost answer); otherwise
-- `retry`, and the caller reads again. Every key is passed in KEYS (none is derived here).
-- KEYS[1] the volunteer's hash   KEYS[2] the phone index
-- KEYS[3 .. 2+N] the hashes of the N teams they are in after the write
-- KEYS[3+N .. 2+2N] those teams' member sets   KEYS[3+2N .. 2+2N+M] member sets of M teams left
-- KEYS[3+2N+M .. 2+2N+2M] the rosters of the teams left: every entry naming the volunteer
-- goes with the membership (compare-and-set on each roster's version, see the prelude)
-- ARGV[1] 'create' | 'update'   ARGV[2] id   ARGV[3] now (ms)
-- ARGV[4] the teams read (update)   ARGV[5] the phone read (update)   ARGV[6] N   ARGV[7] M
-- ARGV[8 .. 7+2M] per roster of a team left: the version read, the document without them
-- ARGV[8+2M ..] field, value pairs of the record (`phone` and `teams` among them)
-- Audited: the last field pair may be '__audit', the entry's JSON, with the audit chain the
-- last of KEYS; it is appended when the write applies.
-- Returns {'ok'}, {'id_taken'}, {'gone'}, {'retry'}, {'phone_taken', owner} or
-- {'no_team', i} (the i-th of the N teams does not exist).
local vol, phones = KEYS[1], KEYS[2]
local mode, id, now = ARGV[1], ARGV[2], ARGV[3]
local n, m = tonumber(ARGV[6]), tonumber(ARGV[7])
local fields = 8 + 2 * m
local last, audit_json = #ARGV, nil
if ARGV[last - 1] == '__audit' then
  audit_json = ARGV[last]
  last = last - 2
end
local new = {}
for i = fields, last, 2 do new[ARGV[i]] = ARGV[i + 1] end
local phone = new['phone']
local cur = redis.call('HMGET', vol, 'status', 'teams', 'phone')
local owner = redis.call('HGET', phones, phone)
-- A retry of a write that applied (its answer lost) leaves the rosters alone: they were
-- written then, and may have changed since.
local rosters = 0
if mode == 'create' then
  if cur[1] then
    -- The same create again (a retry after a lost answer) is done already.
    if cur[3] == phone and owner == id then return {'ok'} end
    return {'id_taken'}
  end
else
  if not cur[1] or cur[1] == 'erased' then return {'gone'} end
  local read = (cur[2] or '') == ARGV[4] and (cur[3] or '') == ARGV[5]
  local written = (cur[2] or '') == (new['teams'] or '') and (cur[3] or '') == phone
  if not read and not written then return {'retry'} end
  if read then
    if not rosters_unchanged(2 + 2 * n + m, 7, m) then return {'retry'} end
    rosters = m
  end
end
if owner and owner ~= id then return {'phone_taken', owner} end
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 + i]) == 0 then return {'no_team', i} end
end
redis.call('HSET', vol, unpack(ARGV, fields, last))
if mode == 'create' then redis.call('HSETNX', vol, 'created', now) end
local old_phone = cur[3]
if old_phone and old_phone ~= phone and redis.call('HGET', phones, old_phone) == id then
  redis.call('HDEL', phones, old_phone)
end
redis.call('HSET', phones, phone, id)
for i = 1, m do redis.call('SREM', KEYS[2 + 2 * n + i], id) end
rosters_write(2 + 2 * n + m, 7, rosters)
for i = 1, n do redis.call('SADD', KEYS[2 + n + i], id) end
if audit_json then audit(KEYS[#KEYS], audit_json, 'ok') end
return {'ok'}

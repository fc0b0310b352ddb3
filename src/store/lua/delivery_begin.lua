-- Claims the sending of delivery `kind` of callout n. Skips work that is no longer needed
-- (already delivered, already answered, incident stood down). A set in-flight mark from an
-- earlier claim means that attempt's outcome is unknown (its worker died): the caller counts
-- the re-send.
-- KEYS[1] incident base key
-- ARGV[1] n   ARGV[2] kind
-- Returns {'skip', why} | {'send', state, volunteer, requirement, tier, channel, resend 0/1}
local base, n, kind = KEYS[1], ARGV[1], ARGV[2]
local co = base .. ':co:' .. n
local f = redis.call('HMGET', co, 'st', 'v', 'r', 'tier', 'ch', 'if_' .. kind, 'ok_' .. kind)
if not f[1] then return {'skip', 'gone'} end
if f[7] then return {'skip', 'done'} end
if kind == 'callout' then
  if f[1] ~= 'pending' then return {'skip', f[1]} end
  local status = redis.call('HGET', base, 'status')
  if status == 'stood_down' or status == 'closed' then return {'skip', 'closed'} end
end
local resend = 0
if f[6] then resend = 1 end
redis.call('HSET', co, 'if_' .. kind, 1)
return {'send', f[1], f[2], f[3], f[4], f[5], resend}

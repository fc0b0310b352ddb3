-- Claims the sending of message `kind` (attempt `attempt`) to one chunk of a delivery entry.
--
-- Each chunk is marked claimed (`CLAIMS` field "entry:first n") before its messages go out.
-- The first claim of a chunk whose entry carries the volunteers (`fast` = 1: a fan-out batch,
-- first attempt) needs nothing else: its callouts were just created and nobody can have
-- answered a call-out they have not received, so only a stand-down is checked. Any other
-- claim reads each callout and skips what is no longer needed: a callout that is gone, a
-- message already delivered or given up, one a later attempt owns (a retry is scheduled), and
-- for a call-out an answered callout or a stood-down incident (for a re-sent call-out,
-- `recall:STEP`, one that is no longer silent; for a call-out handed on after an
-- `undelivered` receipt, `failover`, one that was answered meanwhile; for a standby notice,
-- one that has answered: it goes only to the reached who are still `notified` or `silent`). A chunk claimed before (its
-- worker died or stalled mid-send) makes every message still without an outcome a re-send,
-- which the caller counts.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] kind   ARGV[2] attempt   ARGV[3] chunk mark   ARGV[4] fast 0/1   ARGV[5..] callouts
-- Returns one string: "*send" (fast: send every one, none a re-send), "*closed" (fast: the
-- incident is stood down), or per callout "verdict|volunteer|requirement|resend" lines
-- (verdict 'send' or why not, resend 0/1). Ids never hold '|' or newlines.
local kind, attempt = ARGV[1], tonumber(ARGV[2])
local recall = string.sub(kind, 1, 7) == 'recall:'
local closed = false
local failover = kind == 'failover'
local standby = kind == 'standby'
if kind == 'callout' or recall or failover then
  local status = redis.call('HGET', BASE, 'status')
  closed = (not status) or status == 'stood_down' or status == 'closed'
end
local first = redis.call('HSETNX', CLAIMS, ARGV[3], attempt) == 1
if first and ARGV[4] == '1' then
  if closed then return '*closed' end
  return '*send'
end
local ok, ko, owner = 'ok_' .. kind, 'ko_' .. kind, 'at_' .. kind
local out = {}
for i = 5, #ARGV do
  local c = co_get(ARGV[i]) or {}
  local f = {c.st, c.v, c.r, c[ok], c[ko], c[owner]}
  local verdict = 'send'
  if not f[1] then verdict = 'gone'
  elseif f[4] or f[5] then verdict = 'done'
  elseif tonumber(f[6] or '1') > attempt then verdict = 'later'
  elseif kind == 'callout' and f[1] ~= 'pending' then verdict = f[1]
  elseif recall and f[1] ~= 'silent' then verdict = f[1]
  elseif (failover or standby) and f[1] ~= 'notified' and f[1] ~= 'silent' then verdict = f[1]
  elseif closed then verdict = 'closed' end
  local resend = 0
  if verdict == 'send' and not first then resend = 1 end
  out[#out + 1] = verdict .. '|' .. (f[2] or '') .. '|' .. (f[3] or '') .. '|' .. resend
end
return table.concat(out, '\n')

-- Claims the sending of message `kind` (attempt `attempt`) to a batch of callouts: marks
-- those to send in flight, and says for each whether to send. Skips what is no longer needed:
-- a callout that is gone, a message already delivered or given up, one a later attempt owns
-- (a retry is scheduled), and for a call-out also an answered callout or a stood-down
-- incident. The in-flight mark `if_KIND` holds the attempt that claimed it; finding it set to
-- this attempt means this attempt was claimed before and its outcome is unknown (its worker
-- died mid-send): the caller counts the re-send. (Recording an outcome leaves the mark: a
-- delivered or failed message is skipped anyway, and a retry is a later attempt.)
-- KEYS[1] incident base key
-- ARGV[1] kind   ARGV[2] attempt   ARGV[3..] callout numbers
-- Returns one string (one reply to parse, however large the batch): per callout, in order,
-- "verdict|volunteer|requirement|resend" (verdict 'send' or why not, resend 0/1), the callouts
-- separated by newlines. Ids never contain '|' or newlines (they are checked where made).
local base, kind, attempt = KEYS[1], ARGV[1], tonumber(ARGV[2])
local closed = false
if kind == 'callout' then
  local status = redis.call('HGET', base, 'status')
  closed = (not status) or status == 'stood_down' or status == 'closed'
end
local inflight, ok, ko, owner = 'if_' .. kind, 'ok_' .. kind, 'ko_' .. kind, 'at_' .. kind
local out = {}
for i = 3, #ARGV do
  local co = base .. ':co:' .. ARGV[i]
  local f = redis.call('HMGET', co, 'st', 'v', 'r', inflight, ok, ko, owner)
  local verdict = 'send'
  if not f[1] then verdict = 'gone'
  elseif f[5] or f[6] then verdict = 'done'
  elseif tonumber(f[7] or '1') > attempt then verdict = 'later'
  elseif kind == 'callout' and f[1] ~= 'pending' then verdict = f[1]
  elseif closed then verdict = 'closed' end
  local resend = 0
  if verdict == 'send' then
    if tonumber(f[4] or '0') == attempt then resend = 1 end
    redis.call('HSET', co, inflight, attempt)
  end
  out[#out + 1] = verdict .. '|' .. (f[2] or '') .. '|' .. (f[3] or '') .. '|' .. resend
end
return table.concat(out, '\n')

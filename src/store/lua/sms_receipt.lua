-- A gateway's delivery receipt for one SMS: the callout's delivery state moves forward only
-- (sent → undelivered → delivered), never touching its answer state. An `undelivered` call-out
-- that is still unanswered on a live incident is handed to the next channel of the volunteer's
-- plan, as a failed send is: a `failover` message (the call-out again, same ack link and
-- code) at the next channel's first attempt, through the delayed set (a deterministic member,
-- so a repeated receipt schedules nothing twice).
-- KEYS: the incident set (incident.lua)
-- ARGV[1] n   ARGV[2] status   ARGV[3] now   ARGV[4] gateway   ARGV[5] message kind
-- ARGV[6] the attempt the next channel begins at (0: none)   ARGV[7] incident id
-- Returns 1 when the state changed.
local c = co_get(ARGV[1])
if not c then return 0 end
local rank = {sent = 1, undelivered = 2, delivered = 3}
local cur = c.dl
if cur and (rank[cur] or 0) >= (rank[ARGV[2]] or 0) then return 0 end
c.dl, c.dl_at = ARGV[2], ARGV[3]
event('type', 'callout.sms_' .. ARGV[2], 'at', ARGV[3], 'n', ARGV[1], 'gateway', ARGV[4])
local kind, onward = ARGV[5], tonumber(ARGV[6]) or 0
local calls = kind == 'callout' or kind == 'failover' or string.sub(kind, 1, 7) == 'recall:'
if ARGV[2] == 'undelivered' and onward > 0 and calls then
  local status = redis.call('HGET', BASE, 'status')
  local live = status == 'mustering' or status == 'filled' or status == 'short'
  if live and (c.st == 'notified' or c.st == 'silent') then
    -- The failover message starts afresh on the next channel (its receipt state too).
    c.ok_failover, c.ko_failover, c.dl, c.dl_at = nil, nil, nil, nil
    c.at_failover = tostring(onward)
    redis.call('ZADD', DELAYED, ARGV[3], ARGV[7] .. '|' .. ARGV[1] .. '|failover|' .. onward)
    event('type', 'callout.failover', 'at', ARGV[3], 'n', ARGV[1], 'from', ARGV[4],
      'attempt', onward)
  end
end
co_put(ARGV[1], c)
return 1

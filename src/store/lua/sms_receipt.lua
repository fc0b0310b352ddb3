-- A gateway's delivery receipt for one SMS: the callout's delivery state moves forward only
-- (sent → undelivered → delivered), never touching its answer state. An `undelivered` call-out
-- that is still unanswered on a live incident is handed to the next channel of the volunteer's
-- plan, as a failed send is: a `failover` message (the call-out again, same ack link and
-- code) at the next channel's first attempt, through the delayed set (a deterministic member,
-- so a repeated receipt schedules nothing twice).
-- KEYS[1] incident base key   KEYS[2] partition delayed set
-- ARGV[1] n   ARGV[2] status   ARGV[3] now   ARGV[4] gateway   ARGV[5] message kind
-- ARGV[6] the attempt the next channel begins at (0: none)   ARGV[7] incident id
-- Returns 1 when the state changed.
local co = KEYS[1] .. ':co:' .. ARGV[1]
local rank = {sent = 1, undelivered = 2, delivered = 3}
local cur = redis.call('HGET', co, 'dl')
if redis.call('EXISTS', co) == 0 then return 0 end
if cur and (rank[cur] or 0) >= (rank[ARGV[2]] or 0) then return 0 end
redis.call('HSET', co, 'dl', ARGV[2], 'dl_at', ARGV[3])
event(KEYS[1], 'type', 'callout.sms_' .. ARGV[2], 'at', ARGV[3], 'n', ARGV[1], 'gateway', ARGV[4])
local kind, onward = ARGV[5], tonumber(ARGV[6]) or 0
local calls = kind == 'callout' or kind == 'failover' or string.sub(kind, 1, 7) == 'recall:'
if ARGV[2] == 'undelivered' and onward > 0 and calls then
  local st = redis.call('HGET', co, 'st')
  local status = redis.call('HGET', KEYS[1], 'status')
  local live = status == 'mustering' or status == 'filled' or status == 'short'
  if live and (st == 'notified' or st == 'silent') then
    -- The failover message starts afresh on the next channel (its receipt state too).
    redis.call('HDEL', co, 'ok_failover', 'ko_failover', 'dl', 'dl_at')
    redis.call('HSET', co, 'at_failover', onward)
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[7] .. '|' .. ARGV[1] .. '|failover|' .. onward)
    event(KEYS[1], 'type', 'callout.failover', 'at', ARGV[3], 'n', ARGV[1], 'from', ARGV[4],
      'attempt', onward)
  end
end
return 1

-- Fires due escalation timers of one partition: each due member moves from the timer set to
-- the bus as a `requirement.step_due` event in one atomic step, so with any number of
-- instances ticking, each timer fires exactly once.
-- KEYS[1] partition timer zset   KEYS[2] partition bus stream
-- ARGV[1] now (ms)   ARGV[2] limit
-- Members are "incident|requirement|step". Returns the number fired.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local fired = 0
for i = 1, #due, 2 do
  local m = due[i]
  local inc, req, step = string.match(m, '^([^|]+)|([^|]+)|(%d+)$')
  redis.call('ZREM', KEYS[1], m)
  if inc then
    redis.call('XADD', KEYS[2], '*', 'type', 'requirement.step_due',
      'incident', inc, 'requirement', req, 'step', step, 'due', due[i + 1])
    fired = fired + 1
  end
end
return fired

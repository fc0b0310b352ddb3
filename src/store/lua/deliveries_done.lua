-- Records the outcomes of a batch of delivery attempts of message `kind` and, when an entry id
-- is given, finishes the delivery entry they came from: callouts it never got to (shutdown)
-- are enqueued again as a new entry and it is acknowledged —
-- atomically, so a reclaimed entry re-sends only messages with no recorded outcome. A call-out
-- delivered after its incident was stood down (it was in flight) gets its stand-down notice.
-- KEYS[1] incident base key   KEYS[2] partition delivery stream   KEYS[3] partition delayed set
-- ARGV[1] kind   ARGV[2] now   ARGV[3] incident id   ARGV[4] entry id to finish ('' if none)
-- ARGV[5] consumer group   ARGV[6] callouts to enqueue again ('' if none)   ARGV[7] attempt
-- ARGV[8..] five per callout: n, outcome (ok | retry | failed), detail (channel or error),
--   retry due time (ms), retry attempt number
-- Returns the number of outcomes recorded.
local base, kind, now, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local counts = base .. ':counts'
local notified, reqs = {}, {}
local recorded = 0
local late = {}
for i = 8, #ARGV, 5 do
  local n, outcome, detail = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local co = base .. ':co:' .. n
  local cs = redis.call('HMGET', co, 'st', 'r')
  if cs[2] then
    recorded = recorded + 1
    if outcome == 'ok' and kind == 'callout' and cs[1] == 'stood_down'
        and redis.call('HSETNX', co, 'sdn', now) == 1 then
      late[#late + 1] = n
    end
    if outcome == 'ok' then
      if kind == 'callout' then
        if cs[1] == 'pending' then
          redis.call('HSET', co, 'ok_callout', now, 'na', now, 'ch', detail, 'st', 'notified')
          local l = notified[cs[2]]
          if not l then l = {}; notified[cs[2]] = l; reqs[#reqs + 1] = cs[2] end
          l[#l + 1] = tonumber(n)
        else
          redis.call('HSET', co, 'ok_callout', now, 'na', now, 'ch', detail)
        end
      elseif kind == 'failover' then
        redis.call('HSET', co, 'ok_failover', now, 'ch', detail)
      else
        redis.call('HSET', co, 'ok_' .. kind, now)
      end
    elseif outcome == 'retry' then
      -- Once per attempt: run again after a lost answer (the retry perhaps already moved on
      -- to the stream by `promote_due.lua`), it schedules nothing twice.
      local next_attempt = tonumber(ARGV[i + 4])
      if tonumber(redis.call('HGET', co, 'at_' .. kind) or '0') < next_attempt then
        redis.call('HSET', co, 'err', detail, 'at_' .. kind, ARGV[i + 4])
        redis.call('ZADD', KEYS[3], ARGV[i + 3], id .. '|' .. n .. '|' .. kind .. '|' .. ARGV[i + 4])
      end
    else
      redis.call('HSET', co, 'err', detail, 'ko_' .. kind, now)
      if kind == 'callout' and cs[1] == 'pending' then
        move(co, counts, cs[2], 'pending', 'failed')
        event(base, 'type', 'callout.failed', 'at', now, 'n', n, 'requirement', cs[2], 'reason', detail)
      end
    end
  end
end
table.sort(reqs)
for _, req in ipairs(reqs) do
  local l = notified[req]
  table.sort(l)
  redis.call('HINCRBY', counts, req .. ':pending', -#l)
  redis.call('HINCRBY', counts, req .. ':notified', #l)
  event(base, 'type', 'callouts.notified', 'at', now, 'requirement', req, 'count', #l, 'ns', ranges(l))
end
if #late > 0 then
  table.sort(late, function(a, b) return tonumber(a) < tonumber(b) end)
  enqueue(KEYS[2], id, late, 'stand_down')
end
-- The acknowledgement guards the hand-back: run again (a retry after a lost answer), the entry
-- is acknowledged already and nothing is enqueued twice.
if ARGV[4] ~= '' and redis.call('XACK', KEYS[2], ARGV[5], ARGV[4]) == 1 and ARGV[6] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'i', id, 'ns', ARGV[6], 'k', kind, 'a', ARGV[7])
end
return recorded

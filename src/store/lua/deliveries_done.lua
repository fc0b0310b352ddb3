-- Records the outcomes of a batch of delivery attempts of message `kind` and, when an entry id
-- is given, finishes the delivery entry they came from: callouts it never got to (shutdown)
-- are enqueued again as a new entry and it is acknowledged —
-- atomically, so a reclaimed entry re-sends only messages with no recorded outcome. A call-out
-- delivered after its incident was stood down (it was in flight) gets its stand-down notice.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] kind   ARGV[2] now   ARGV[3] incident id   ARGV[4] entry id to finish ('' if none)
-- ARGV[5] consumer group   ARGV[6] callouts to enqueue again ('' if none)   ARGV[7] attempt
-- ARGV[8..] five per callout: n, outcome (ok | retry | failed), detail (channel or error),
--   retry due time (ms), retry attempt number
-- Returns the number of outcomes recorded.
local kind, now, id = ARGV[1], ARGV[2], ARGV[3]
local notified, reqs = {}, {}
local recorded = 0
local late = {}
for i = 8, #ARGV, 5 do
  local n, outcome, detail = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local c = co_get(n)
  if c and c.r then
    local st, req = c.st, c.r
    local dirty = false
    recorded = recorded + 1
    if outcome == 'ok' and kind == 'callout' and st == 'stood_down' and not c.sdn then
      c.sdn = now
      dirty = true
      late[#late + 1] = n
    end
    if outcome == 'ok' then
      dirty = true
      if kind == 'callout' then
        c.ok_callout, c.na, c.ch = now, now, detail
        if st == 'pending' then
          c.st = 'notified'
          local l = notified[req]
          if not l then l = {}; notified[req] = l; reqs[#reqs + 1] = req end
          l[#l + 1] = tonumber(n)
        end
      elseif kind == 'failover' then
        c.ok_failover, c.ch = now, detail
      else
        c['ok_' .. kind] = now
      end
    elseif outcome == 'retry' then
      -- Once per attempt: run again after a lost answer (the retry perhaps already moved on
      -- to the stream by `promote_due.lua`), it schedules nothing twice.
      local next_attempt = tonumber(ARGV[i + 4])
      if tonumber(c['at_' .. kind] or '0') < next_attempt then
        c.err = detail
        c['at_' .. kind] = ARGV[i + 4]
        dirty = true
        redis.call('ZADD', DELAYED, ARGV[i + 3], id .. '|' .. n .. '|' .. kind .. '|' .. ARGV[i + 4])
      end
    else
      c.err = detail
      c['ko_' .. kind] = now
      dirty = true
      if kind == 'callout' and st == 'pending' then
        move(c, req, 'pending', 'failed')
        event('type', 'callout.failed', 'at', now, 'n', n, 'requirement', req, 'reason', detail)
      end
    end
    if dirty then co_put(n, c) end
  end
end
table.sort(reqs)
for _, req in ipairs(reqs) do
  local l = notified[req]
  table.sort(l)
  redis.call('HINCRBY', COUNTS, req .. ':pending', -#l)
  redis.call('HINCRBY', COUNTS, req .. ':notified', #l)
  event('type', 'callouts.notified', 'at', now, 'requirement', req, 'count', #l, 'ns', ranges(l))
end
if #late > 0 then
  table.sort(late, function(a, b) return tonumber(a) < tonumber(b) end)
  enqueue(DELIVERIES, id, late, 'stand_down')
end
-- The acknowledgement guards the hand-back: run again (a retry after a lost answer), the entry
-- is acknowledged already and nothing is enqueued twice.
if ARGV[4] ~= '' and redis.call('XACK', DELIVERIES, ARGV[5], ARGV[4]) == 1 and ARGV[6] ~= '' then
  redis.call('XADD', DELIVERIES, '*', 'i', id, 'ns', ARGV[6], 'k', kind, 'a', ARGV[7])
end
return recorded

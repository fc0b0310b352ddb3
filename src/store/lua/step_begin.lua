-- Begins escalation step `step` of a requirement, once: callouts of earlier steps that are
-- still unanswered become `silent` (they can still accept), and the requirement's step and
-- tier move on. Re-running the step that is current is allowed (a re-delivered event redoes
-- its idempotent selection); an older step is stale. A step with `renotify` sends the call-out
-- again (delivery kind `recall:STEP`, a new message id, the same ack link) to every callout
-- of the requirement still silent, once, as the step begins.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] requirement   ARGV[2] step   ARGV[3] tier   ARGV[4] now   ARGV[5] renotify 0/1
-- ARGV[6] incident id
-- Returns 'go' | 'stale:N' (N the step begun already) | 'filled' | 'closed'.
local req, step = ARGV[1], tonumber(ARGV[2])
local status = redis.call('HGET', BASE, 'status')
if not status or status == 'stood_down' or status == 'closed' then return 'closed' end
local c = redis.call('HMGET', COUNTS, req .. ':needed', req .. ':accepted', req .. ':arrived', req .. ':step', req .. ':begun')
if tonumber(c[2] or '0') + tonumber(c[3] or '0') >= tonumber(c[1] or '0') then return 'filled' end
local begun = tonumber(c[5] or '-1')
if begun > step then return 'stale:' .. begun end
if begun < step then
  silence(req, ARGV[4])
  redis.call('HSET', COUNTS, req .. ':begun', step, req .. ':step', step, req .. ':tier', ARGV[3])
  event('type', 'requirement.step', 'at', ARGV[4], 'requirement', req, 'step', step, 'tier', ARGV[3])
  if ARGV[5] == '1' then
    local again, total = {}, 0
    local kind = 'recall:' .. ARGV[2]
    for _, m in ipairs(rco(req)) do
      local mc = co_get(m)
      if mc and mc.st == 'silent' then
        again[#again + 1] = tonumber(m)
        if #again == 1000 then enqueue(DELIVERIES, ARGV[6], again, kind); total = total + #again; again = {} end
      end
    end
    if #again > 0 then enqueue(DELIVERIES, ARGV[6], again, kind); total = total + #again end
    if total > 0 then
      event('type', 'requirement.renotified', 'at', ARGV[4], 'requirement', req, 'step', step, 'count', total)
    end
  end
end
return 'go'

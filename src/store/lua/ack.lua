-- Applies a volunteer's answer to callout n atomically against the requirement's headcount.
-- The table T (prepended by store/scripts.rs from domain::callout::transition) says what each
-- answer does in each state.
-- KEYS: the incident set (incident.lua). One who withdraws after arriving gets a service record.
-- ARGV[1] n   ARGV[2] response   ARGV[3] now   ARGV[4] incident id   ARGV[5] via (web, page, sms)
-- ARGV[6] 'standby' (optional): the caller claimed nobody, having found the requirement full,
--         so an acceptance may only go to standby; if a place is free it changes nothing
--         and returns {'free', state} (the caller then claims the volunteer and asks again).
-- Returns {'unknown'} | {'closed', state} | {'same', state} | {'refused', state, reason}
--       | {'changed', new state, promoted n or ''} | {'free', state}
local n, response, now, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', BASE, 'status')
if not status then return {'unknown'} end
local c = co_get(n)
if not c or not c.st then return {'unknown'} end
local state, req = c.st, c.r
if status == 'stood_down' or status == 'closed' then return {'closed', state} end
local action = T[response] and T[response][state]
if not action then return {'refused', state, 'unknown answer'} end
if action == 'same' then return {'same', state} end
local verb, arg = string.match(action, '^(%a+):?(.*)$')
if verb == 'refuse' then return {'refused', state, arg} end
local new
if verb == 'slot' then
  local k = redis.call('HMGET', COUNTS, req .. ':needed', req .. ':accepted', req .. ':arrived')
  local taken = tonumber(k[2] or '0') + tonumber(k[3] or '0')
  if taken < tonumber(k[1] or '0') then
    if ARGV[6] == 'standby' then return {'free', state} end
    new = 'accepted'
  else
    new = 'standby'
    standby_push(req, n, c)
  end
else
  new = arg
  if state == 'standby' then standby_remove(c) end
end
move(c, req, state, new)
local stamp = ({accepted = 'aa', standby = 'aa', declined = 'da', withdrawn = 'wa', arrived = 'ra'})[new]
if stamp then c[stamp] = now end
co_put(n, c)
-- The place just taken was the last: everyone reached but silent so far is told to stand by.
-- Which of the requirement's callouts that is, the notifier decides as it sends (a standby
-- notice goes only to a callout still `notified` or `silent`, once: deliveries_begin.lua), so
-- this script stays short however many were called: it reads no callout here.
if new == 'accepted' then
  local k = redis.call('HMGET', COUNTS, req .. ':needed', req .. ':accepted', req .. ':arrived')
  if tonumber(k[2] or '0') + tonumber(k[3] or '0') == tonumber(k[1] or '0') then
    local told = {}
    for _, m in ipairs(rco(req)) do
      if m ~= n then
        told[#told + 1] = tonumber(m)
        if #told == 1000 then enqueue(DELIVERIES, id, told, 'standby'); told = {} end
      end
    end
    if #told > 0 then enqueue(DELIVERIES, id, told, 'standby') end
  end
end
if new == 'withdrawn' and state == 'arrived' then
  service(id, n, c, now, 'withdrawn')
end
event('type', 'callout.' .. new, 'at', now, 'n', n, 'requirement', req, 'from', state, 'via', ARGV[5])
local promoted = ''
if verb == 'promote' then
  while true do
    local m = standby_pop(req)
    if not m then break end
    local pc = co_get(m)
    if pc and pc.st == 'standby' then
      pc.sbk = nil
      move(pc, req, 'standby', 'accepted')
      pc.pa = now
      co_put(m, pc)
      enqueue(DELIVERIES, id, m, 'promoted')
      event('type', 'callout.promoted', 'at', now, 'n', m, 'requirement', req)
      promoted = m
      break
    end
  end
end
redis.call('XADD', BUS, '*', 'type', 'callout.answered', 'incident', id, 'n', n, 'promoted', promoted)
return {'changed', new, promoted}

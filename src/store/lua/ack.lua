-- Applies a volunteer's answer to callout n atomically against the requirement's headcount.
-- The table T (prepended by store/scripts.rs from domain::callout::transition) says what each
-- answer does in each state.
-- KEYS[1] incident base key   KEYS[2] partition bus stream   KEYS[3] partition delivery stream
-- KEYS[4] partition service records   KEYS[5] their index by end time (one who withdraws
-- after arriving gets a service record)
-- ARGV[1] n   ARGV[2] response   ARGV[3] now   ARGV[4] incident id   ARGV[5] via (web, page, sms)
-- Returns {'unknown'} | {'closed', state} | {'same', state} | {'refused', state, reason}
--       | {'changed', new state, promoted n or ''}
local base, n, response, now, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', base, 'status')
if not status then return {'unknown'} end
local co = base .. ':co:' .. n
local cs = redis.call('HMGET', co, 'st', 'r')
local state, req = cs[1], cs[2]
if not state then return {'unknown'} end
if status == 'stood_down' or status == 'closed' then return {'closed', state} end
local action = T[response] and T[response][state]
if not action then return {'refused', state, 'unknown answer'} end
if action == 'same' then return {'same', state} end
local verb, arg = string.match(action, '^(%a+):?(.*)$')
if verb == 'refuse' then return {'refused', state, arg} end
local counts = base .. ':counts'
local standby = base .. ':standby:' .. req
local new
if verb == 'slot' then
  local c = redis.call('HMGET', counts, req .. ':needed', req .. ':accepted', req .. ':arrived')
  local taken = tonumber(c[2] or '0') + tonumber(c[3] or '0')
  if taken < tonumber(c[1] or '0') then
    new = 'accepted'
  else
    new = 'standby'
    redis.call('RPUSH', standby, n)
  end
else
  new = arg
  if state == 'standby' then redis.call('LREM', standby, 0, n) end
end
move(co, counts, req, state, new)
-- The place just taken was the last: everyone reached but silent so far is told to stand by.
if new == 'accepted' then
  local c = redis.call('HMGET', counts, req .. ':needed', req .. ':accepted', req .. ':arrived')
  if tonumber(c[2] or '0') + tonumber(c[3] or '0') == tonumber(c[1] or '0') then
    local told = {}
    for _, m in ipairs(redis.call('LRANGE', base .. ':rco:' .. req, 0, -1)) do
      local mco = base .. ':co:' .. m
      local st = redis.call('HGET', mco, 'st')
      if (st == 'notified' or st == 'silent') and redis.call('HSETNX', mco, 'sbn', now) == 1 then
        told[#told + 1] = tonumber(m)
        if #told == 1000 then enqueue(KEYS[3], id, told, 'standby'); told = {} end
      end
    end
    if #told > 0 then enqueue(KEYS[3], id, told, 'standby') end
  end
end
if new == 'withdrawn' and state == 'arrived' then
  service(base, KEYS[4], KEYS[5], id, n, now, 'withdrawn')
end
local stamp = ({accepted = 'aa', standby = 'aa', declined = 'da', withdrawn = 'wa', arrived = 'ra'})[new]
if stamp then redis.call('HSET', co, stamp, now) end
event(base, 'type', 'callout.' .. new, 'at', now, 'n', n, 'requirement', req, 'from', state, 'via', ARGV[5])
local promoted = ''
if verb == 'promote' then
  while true do
    local m = redis.call('LPOP', standby)
    if not m then break end
    local pco = base .. ':co:' .. m
    if redis.call('HGET', pco, 'st') == 'standby' then
      move(pco, counts, req, 'standby', 'accepted')
      redis.call('HSET', pco, 'pa', now)
      enqueue(KEYS[3], id, m, 'promoted')
      event(base, 'type', 'callout.promoted', 'at', now, 'n', m, 'requirement', req)
      promoted = m
      break
    end
  end
end
redis.call('XADD', KEYS[2], '*', 'type', 'callout.answered', 'incident', id, 'n', n, 'promoted', promoted)
return {'changed', new, promoted}

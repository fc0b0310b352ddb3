-- The progress projection: recomputes an incident's status from its counters (mustering ↔
-- filled) and records a progress event. Idempotent.
-- KEYS[1] incident base key   ARGV[1] now
-- Returns the status.
local base = KEYS[1]
local f = redis.call('HMGET', base, 'status', 'reqs')
local status = f[1]
if not status then return '' end
if status ~= 'mustering' and status ~= 'filled' then return status end
local counts = base .. ':counts'
local all = true
for _, r in ipairs(cjson.decode(f[2])) do
  local c = redis.call('HMGET', counts, r.id .. ':needed', r.id .. ':accepted', r.id .. ':arrived')
  if tonumber(c[2] or '0') + tonumber(c[3] or '0') < tonumber(c[1] or '0') then all = false end
end
local new = 'mustering'
if all then new = 'filled' end
if new ~= status then
  redis.call('HSET', base, 'status', new)
  if new == 'filled' then redis.call('HSETNX', base, 'filled_at', ARGV[1]) end
  event(base, 'type', 'incident.' .. new, 'at', ARGV[1])
end
return new

-- The progress projection: recomputes an incident's status from its counters (mustering,
-- filled, or short when a requirement's ladder ran out) and records a progress event. Idempotent.
-- KEYS: the incident set (incident.lua)   ARGV[1] now
-- Returns the status.
local f = redis.call('HMGET', BASE, 'status', 'reqs')
local status = f[1]
if not status then return '' end
if status ~= 'mustering' and status ~= 'filled' and status ~= 'short' then return status end
local all, short = true, false
for _, r in ipairs(cjson.decode(f[2])) do
  local c = redis.call('HMGET', COUNTS, r.id .. ':needed', r.id .. ':accepted', r.id .. ':arrived', r.id .. ':short')
  if tonumber(c[2] or '0') + tonumber(c[3] or '0') < tonumber(c[1] or '0') then
    all = false
    if c[4] then short = true end
  end
end
local new = 'mustering'
if all then new = 'filled' elseif short then new = 'short' end
if new ~= status then
  redis.call('HSET', BASE, 'status', new)
  if new == 'filled' then redis.call('HSETNX', BASE, 'filled_at', ARGV[1]) end
  event('type', 'incident.' .. new, 'at', ARGV[1])
end
return new

-- Upgrades an incident to a more severe level: the new plan's requirements are merged in
-- (new ones added, larger headcounts raised; nothing shrinks, nothing accepted is lost).
-- A raised headcount first promotes volunteers already standing by, in acceptance order;
-- the fan-out then calls out for what is still missing. Compare-and-set on the level, so two
-- upgrades at once apply once.
-- KEYS: the incident set (incident.lua)   ARGV[8] audit entry JSON
-- ARGV[1] expected level   ARGV[2] new level   ARGV[3] plan id   ARGV[4] merged reqs JSON
-- ARGV[5] JSON {req: needed} of added or raised requirements   ARGV[6] now   ARGV[7] incident id
-- Returns 'ok' | 'closed' | 'moved' (the level changed meanwhile).
local f = redis.call('HMGET', BASE, 'status', 'level')
if not f[1] or f[1] == 'stood_down' or f[1] == 'closed' then return 'closed' end
if f[2] ~= ARGV[1] then return 'moved' end
redis.call('HSET', BASE, 'level', ARGV[2], 'plan_id', ARGV[3], 'reqs', ARGV[4])
local changed = {}
for req, needed in pairs(cjson.decode(ARGV[5])) do
  redis.call('HSET', COUNTS, req .. ':needed', needed)
  redis.call('HDEL', COUNTS, req .. ':short')
  changed[#changed + 1] = req
  while true do
    local c = redis.call('HMGET', COUNTS, req .. ':accepted', req .. ':arrived')
    if tonumber(c[1] or '0') + tonumber(c[2] or '0') >= tonumber(needed) then break end
    local m = standby_pop(req)
    if not m then break end
    local pc = co_get(m)
    if pc and pc.st == 'standby' then
      pc.sbk = nil
      move(pc, req, 'standby', 'accepted')
      pc.pa = ARGV[6]
      co_put(m, pc)
      enqueue(DELIVERIES, ARGV[7], m, 'promoted')
      event('type', 'callout.promoted', 'at', ARGV[6], 'n', m, 'requirement', req)
    end
  end
end
event('type', 'incident.upgraded', 'at', ARGV[6], 'level', ARGV[2], 'plan_id', ARGV[3])
redis.call('XADD', BUS, '*', 'type', 'incident.upgraded', 'incident', ARGV[7],
  'requirements', table.concat(changed, ','))
audit(AUDIT, ARGV[8], 'ok')
return 'ok'

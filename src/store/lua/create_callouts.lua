-- Creates callouts for a batch of candidates of one requirement, skipping volunteers this
-- incident already called, and enqueues one delivery entry for all of them. Idempotent. The
-- new callouts get consecutive numbers, so the entry names them as one range; it also carries
-- their volunteer ids (`vs`, in order) and requirement (`r`), so the notifier's first attempt
-- need not read each callout back.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] id   ARGV[2] now   ARGV[3] requirement   ARGV[4] tier   ARGV[5] step
-- ARGV[6..] triples of (volunteer id, channel, team id)
-- Returns {created, first n or 0}; {-1} unknown incident; {-2} incident no longer active.
local st = redis.call('HGET', BASE, 'status')
if not st then return {-1, 0} end
if st == 'stood_down' or st == 'closed' then return {-2, 0} end
local id, now, req, tier, step = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local seq = tonumber(redis.call('HGET', BASE, 'seq') or '0')
local first = seq + 1
local ns, vs, rows = {}, {}, {}
for i = 6, #ARGV, 3 do
  -- Numbers as integer text: Lua's own number-to-string goes through float formatting.
  local n = string.format('%d', seq + 1)
  if redis.call('HSETNX', CALLED, ARGV[i], n) == 1 then
    seq = seq + 1
    rows[#rows + 1] = n
    rows[#rows + 1] = cjson.encode({v = ARGV[i], r = req, tier = tier, step = step,
      ch = ARGV[i + 1], tm = ARGV[i + 2], ca = now, st = 'pending'})
    if #rows >= 1000 then redis.call('HSET', CO, unpack(rows)); rows = {} end
    ns[#ns + 1] = n
    vs[#vs + 1] = ARGV[i]
  end
end
if #rows > 0 then redis.call('HSET', CO, unpack(rows)) end
local created = #ns
if created == 0 then return {0, 0} end
local span = string.format('%d-%d', first, seq)
redis.call('HSET', BASE, 'seq', string.format('%d', seq))
rco_add(req, ns)
redis.call('HINCRBY', COUNTS, req .. ':pending', created)
redis.call('HINCRBY', COUNTS, req .. ':called@' .. step, created)
redis.call('XADD', DELIVERIES, '*', 'i', id, 'ns', span, 'k', 'callout', 'a', 1, 'r', req,
  'vs', table.concat(vs, ','))
event('type', 'callouts.created', 'at', now, 'requirement', req, 'count', created, 'tier', tier,
  'step', step, 'ns', span)
return {created, first}

-- Creates callouts for a batch of candidates of one requirement, skipping volunteers this
-- incident already called, and enqueues one delivery per new callout. Idempotent.
-- KEYS[1] incident base key   KEYS[2] partition delivery stream
-- ARGV[1] id   ARGV[2] now   ARGV[3] requirement   ARGV[4] tier   ARGV[5] step
-- ARGV[6..] pairs of (volunteer id, channel)
-- Returns {created, first n or 0}; {-1} unknown incident; {-2} incident no longer active.
local base = KEYS[1]
local st = redis.call('HGET', base, 'status')
if not st then return {-1, 0} end
if st == 'stood_down' or st == 'closed' then return {-2, 0} end
local id, now, req, tier, step = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local counts = base .. ':counts'
local created, first = 0, 0
for i = 6, #ARGV, 2 do
  local vid = ARGV[i]
  if redis.call('HEXISTS', base .. ':called', vid) == 0 then
    local n = redis.call('HINCRBY', base, 'seq', 1)
    redis.call('HSET', base .. ':called', vid, n)
    redis.call('RPUSH', base .. ':rco:' .. req, n)
    local co = base .. ':co:' .. n
    redis.call('HSET', co, 'v', vid, 'r', req, 'tier', tier, 'step', step, 'ch', ARGV[i + 1], 'ca', now)
    move(co, counts, req, nil, 'pending')
    enqueue(KEYS[2], id, n, 'callout')
    created = created + 1
    if first == 0 then first = n end
  end
end
if created > 0 then
  redis.call('HINCRBY', counts, req .. ':called@' .. step, created)
  event(base, 'type', 'callouts.created', 'at', now, 'requirement', req, 'count', created, 'tier', tier, 'step', step)
end
return {created, first}

-- Claims the drills whose time has come, so exactly one instance raises each: every due id
-- moves from the due set to the firing set (scored by the claiming instance's wall time) in
-- one step. A claim whose instance died before recording the raise is taken again after the
-- lease; the raise itself is idempotent (the incident id comes from the drill id), so a
-- retaken claim never raises a second incident.
-- KEYS[1] due set   KEYS[2] firing set (the caller marks each claimed drill starting)
-- ARGV[1] now (ms, injected clock)   ARGV[2] wall now (ms)   ARGV[3] lease (ms)   ARGV[4] limit
-- Returns the claimed ids.
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  out[#out + 1] = id
end
local stale = tonumber(ARGV[2]) - tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', stale, 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  out[#out + 1] = id
end
return out

-- Marks callouts first..last of a stood-down incident `stood_down` and enqueues a stand-down
-- notice for everyone who was reached (accepted, standby, notified, silent, arrived). Callouts
-- not yet delivered are closed silently; one whose call-out was in flight gets its notice when
-- that delivery is recorded (deliveries_done.lua). Declined, withdrawn and failed ones keep
-- their final state. Idempotent.
-- Those who accepted (or arrived) get their service record (see `service` in the prelude).
-- KEYS[1] incident base key   KEYS[2] partition delivery stream
-- KEYS[3] partition service records   KEYS[4] their index by end time
-- ARGV[1] id   ARGV[2] now   ARGV[3] first n   ARGV[4] last n
-- Returns the number of notices enqueued (as one delivery entry).
local base, id, now = KEYS[1], ARGV[1], ARGV[2]
local counts = base .. ':counts'
local told = {notified = true, silent = true, accepted = true, standby = true, arrived = true}
local notices = {}
for n = tonumber(ARGV[3]), tonumber(ARGV[4]) do
  local co = base .. ':co:' .. n
  local f = redis.call('HMGET', co, 'st', 'r')
  local st = f[1]
  if st and (told[st] or st == 'pending') then
    if st == 'accepted' or st == 'arrived' then
      service(base, KEYS[3], KEYS[4], id, n, now, 'stood_down')
    end
    move(co, counts, f[2], st, 'stood_down')
    redis.call('HSET', co, 'sa', now, 'was', st)
    if told[st] then
      notices[#notices + 1] = n
    end
  end
end
if #notices > 0 then enqueue(KEYS[2], id, notices, 'stand_down') end
return #notices

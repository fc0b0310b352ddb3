-- Marks callouts first..last of a stood-down incident `stood_down` and enqueues a stand-down
-- notice for everyone who was reached (accepted, standby, notified, silent, arrived). Callouts
-- not yet delivered are closed silently; one whose call-out was in flight gets its notice when
-- that delivery is recorded (deliveries_done.lua). Declined, withdrawn and failed ones keep
-- their final state. Idempotent.
-- Those who accepted (or arrived) get their service record (see `service` in the prelude).
-- KEYS: the incident set (incident.lua)
-- ARGV[1] id   ARGV[2] now   ARGV[3] first n   ARGV[4] last n
-- Returns the number of notices enqueued (as one delivery entry).
local id, now = ARGV[1], ARGV[2]
local told = {notified = true, silent = true, accepted = true, standby = true, arrived = true}
local notices = {}
for n = tonumber(ARGV[3]), tonumber(ARGV[4]) do
  local c = co_get(n)
  local st = c and c.st
  if st and (told[st] or st == 'pending') then
    if st == 'accepted' or st == 'arrived' then
      service(id, n, c, now, 'stood_down')
    end
    standby_remove(c)
    move(c, c.r, st, 'stood_down')
    c.sa, c.was = now, st
    co_put(n, c)
    if told[st] then
      notices[#notices + 1] = n
    end
  end
end
if #notices > 0 then enqueue(DELIVERIES, id, notices, 'stand_down') end
return #notices

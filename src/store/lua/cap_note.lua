-- Records a CAP alert on the incident it changed: its reference joins the incident's `cap`
-- list (once) and the change is an event of the incident, in one step.
-- KEYS: the incident set (incident.lua)
-- ARGV[1] reference "sender,identifier,sent"   ARGV[2] now (ms)   ARGV[3] detail
-- Returns 1, or 0 when the incident is unknown or already holds the reference.
if redis.call('EXISTS', BASE) == 0 then return 0 end
local raw = redis.call('HGET', BASE, 'cap')
local list = {}
if raw and raw ~= '' then list = cjson.decode(raw) end
for _, r in ipairs(list) do
  if r == ARGV[1] then return 0 end
end
list[#list + 1] = ARGV[1]
redis.call('HSET', BASE, 'cap', cjson.encode(list))
event('type', 'cap.received', 'at', ARGV[2], 'detail', ARGV[3])
return 1

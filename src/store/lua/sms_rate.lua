-- A gateway's send rate, shared by every instance (GCRA): takes one message's turn, or says
-- how long to wait for it.
-- KEYS[1] the gateway's theoretical arrival time   ARGV[1] now (ms)   ARGV[2] ms per message
-- ARGV[3] burst (messages that may go at once)
-- Returns 0 (go) or the wait in ms.
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat - now - interval * (burst - 1)
if ahead > 0 then return math.ceil(ahead) end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(interval * burst) + 1000)
return 0

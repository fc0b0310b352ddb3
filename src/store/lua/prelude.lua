-- Shared helpers, prepended to every script (see store/scripts.rs).

-- Moves callout `co` of requirement `req` from state `from` to `to`, keeping the per-state
-- counters of the incident's counts hash exact.
local function move(co, counts, req, from, to)
  if from == to then return end
  if from then redis.call('HINCRBY', counts, req .. ':' .. from, -1) end
  redis.call('HINCRBY', counts, req .. ':' .. to, 1)
  redis.call('HSET', co, 'st', to)
end

-- Marks every unanswered (`notified`) callout of requirement `req` `silent`: its step's wait
-- ran out. Silent callouts can still accept.
local function silence(base, counts, req, now)
  for _, n in ipairs(redis.call('LRANGE', base .. ':rco:' .. req, 0, -1)) do
    local co = base .. ':co:' .. n
    if redis.call('HGET', co, 'st') == 'notified' then
      move(co, counts, req, 'notified', 'silent')
      redis.call('HSET', co, 'sia', now)
    end
  end
end

-- Appends an event to an incident's stream.
local function event(base, ...)
  redis.call('XADD', base .. ':events', '*', ...)
end

-- Enqueues a delivery (kind: callout, standby, promoted, stand_down) of callout n.
local function enqueue(deliveries, id, n, kind)
  redis.call('XADD', deliveries, 'MAXLEN', '~', 100000, '*', 'i', id, 'n', n, 'k', kind, 'a', 1)
end

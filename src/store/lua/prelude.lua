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

-- Writes an ascending list of callout numbers compactly: {1,2,3,7,9,10} -> "1-3,7,9-10".
local function ranges(ns)
  local out, i = {}, 1
  while i <= #ns do
    local j = i
    while j < #ns and tonumber(ns[j + 1]) == tonumber(ns[j]) + 1 do j = j + 1 end
    if j == i then out[#out + 1] = tostring(ns[i]) else out[#out + 1] = ns[i] .. '-' .. ns[j] end
    i = j + 1
  end
  return table.concat(out, ',')
end

-- Enqueues one delivery entry: message `kind` (callout, standby, promoted, stand_down) to
-- callouts `ns` (one number, or an ascending list written with `ranges`). The notifier sends
-- a whole entry's messages as one batch. Streams are trimmed by the scheduler only below what
-- every consumer group has finished, never by length here.
local function enqueue(deliveries, id, ns, kind)
  local spec = ns
  if type(ns) == 'table' then spec = ranges(ns) end
  redis.call('XADD', deliveries, '*', 'i', id, 'ns', spec, 'k', kind, 'a', 1)
end

-- The roster edits a registry write carries: R roster hashes at KEYS[k0+1 .. k0+R], and for
-- each, at ARGV[a0+2i-1] and ARGV[a0+2i], the version the caller read and the document to
-- write ('' leaves it as it is). Whether every version is still the one read:
local function rosters_unchanged(k0, a0, r)
  for i = 1, r do
    local ver = tonumber(redis.call('HGET', KEYS[k0 + i], 'ver') or '0')
    if ver ~= tonumber(ARGV[a0 + 2 * i - 1]) then return false end
  end
  return true
end

-- Writes those edits: each new document, and a new version for every roster that exists, so a
-- roster write that read before this one fails its own compare-and-set.
local function rosters_write(k0, a0, r)
  for i = 1, r do
    local key, doc = KEYS[k0 + i], ARGV[a0 + 2 * i]
    if doc ~= '' then redis.call('HSET', key, 'doc', doc) end
    if redis.call('EXISTS', key) == 1 then redis.call('HINCRBY', key, 'ver', 1) end
  end
end

-- Appends an audit entry (the JSON object `json` of its fields, plus `outcome`) to the audit
-- stream `stream`, in the same step as the change it records. An empty `json`: not audited.
local function audit(stream, json, outcome)
  if not stream or not json or json == '' then return end
  local args = {}
  for k, v in pairs(cjson.decode(json)) do
    args[#args + 1] = k
    args[#args + 1] = tostring(v)
  end
  args[#args + 1] = 'outcome'
  args[#args + 1] = outcome
  redis.call('XADD', stream, '*', unpack(args))
end

-- Writes callout n's service record, once: someone who accepted (or arrived) was stood down,
-- or withdrew after arriving. The record is JSON in the partition's service-record hash
-- `svc`, indexed by end time (`svc_time`) and by volunteer (`svc .. ':vol:' .. id`). The hours
-- count from arrival, or from acceptance (promotion for one who stood by) when nobody
-- checked them in; `basis` says which. A drill's hours are training hours (`mode`).
local function service(base, svc, svc_time, id, n, ended, how)
  local co = base .. ':co:' .. n
  local f = redis.call('HMGET', co, 'v', 'r', 'tm', 'aa', 'ra', 'pa')
  if not f[1] then return end
  local start, basis = f[5], 'arrival'
  if not start then
    start, basis = f[6] or f[4], 'acceptance'
  end
  if not start then return end
  local inc = redis.call('HMGET', base, 'kind', 'region', 'title', 'mode')
  local key = id .. '.' .. n
  local rec = cjson.encode({
    id = key, volunteer = f[1], incident = id, n = tostring(n), requirement = f[2] or '',
    team = f[3] or '', kind = inc[1] or '', region = inc[2] or '', title = inc[3] or '',
    mode = inc[4] or 'live', accepted_at = f[6] or f[4] or '', arrived_at = f[5] or '',
    start = start, ended_at = ended, ended = how, basis = basis,
  })
  if redis.call('HSETNX', svc, key, rec) == 1 then
    redis.call('ZADD', svc_time, ended, key)
    redis.call('ZADD', svc .. ':vol:' .. f[1], ended, key)
  end
end

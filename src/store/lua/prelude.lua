-- Shared helpers, prepended to every script (see store/scripts.rs).

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

-- Prepended (after prelude.lua) to every script that changes an incident. Such a script gets
-- the same keys, in this order, all under the incident's partition hash tag: every key it
-- touches is declared, none is derived here, so a Cluster checks, routes and migrates them
-- together (see Keys::incident_set).
local BASE, CO, COUNTS, CALLED, EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local CLAIMS, SEL, RCO, STANDBY = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local BUS, DELIVERIES, DELAYED, TIMERS = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local SVC, SVC_TIME, SVC_VOL, AUDIT = KEYS[14], KEYS[15], KEYS[16], KEYS[17]

-- Callout n: one field of the callout hash, a JSON object of text fields (v volunteer,
-- r requirement, tier, step, tm team, ch channel, st state, timestamps, delivery marks).
local function co_get(n)
  local raw = redis.call('HGET', CO, n)
  if raw then return cjson.decode(raw) end
  return nil
end

local function co_put(n, c)
  redis.call('HSET', CO, n, cjson.encode(c))
end

-- Moves callout `c` of requirement `req` from state `from` to `to`, keeping the per-state
-- counters of the incident's counts hash exact (the caller writes `c` back).
local function move(c, req, from, to)
  if from == to then return end
  if from then redis.call('HINCRBY', COUNTS, req .. ':' .. from, -1) end
  redis.call('HINCRBY', COUNTS, req .. ':' .. to, 1)
  c.st = to
end

-- The callout numbers of requirement `req`, in creation order.
local function rco(req)
  local out = {}
  for _, m in ipairs(redis.call('ZRANGEBYLEX', RCO, '[' .. req .. '|', '[' .. req .. '|~')) do
    out[#out + 1] = string.match(m, '|0*(%d+)$')
  end
  return out
end

local function rco_add(req, ns)
  local args = {}
  for _, n in ipairs(ns) do
    args[#args + 1] = 0
    args[#args + 1] = req .. '|' .. string.format('%010d', tonumber(n))
    if #args >= 1000 then redis.call('ZADD', RCO, unpack(args)); args = {} end
  end
  if #args > 0 then redis.call('ZADD', RCO, unpack(args)) end
end

-- Standby, in acceptance order per requirement.
local function standby_push(req, n, c)
  local s = redis.call('HINCRBY', BASE, 'sbseq', 1)
  local m = req .. '|' .. string.format('%010d', s) .. '|' .. n
  redis.call('ZADD', STANDBY, 0, m)
  c.sbk = m
end

local function standby_remove(c)
  if c.sbk then
    redis.call('ZREM', STANDBY, c.sbk)
    c.sbk = nil
  end
end

-- Takes the first on standby for `req`: its number, or nil.
local function standby_pop(req)
  local first = redis.call('ZRANGEBYLEX', STANDBY, '[' .. req .. '|', '[' .. req .. '|~', 'LIMIT', 0, 1)
  if not first[1] then return nil end
  redis.call('ZREM', STANDBY, first[1])
  return string.match(first[1], '|(%d+)$')
end

-- Marks every unanswered (`notified`) callout of requirement `req` `silent`: its step's wait
-- ran out. Silent callouts can still accept.
local function silence(req, now)
  for _, n in ipairs(rco(req)) do
    local c = co_get(n)
    if c and c.st == 'notified' then
      move(c, req, 'notified', 'silent')
      c.sia = now
      co_put(n, c)
    end
  end
end

-- Appends an event to the incident's stream.
local function event(...)
  redis.call('XADD', EVENTS, '*', ...)
end

-- Writes callout n's (`c`) service record, once: someone who accepted (or arrived) was stood
-- down, or withdrew after arriving. The record is JSON in the partition's service-record hash,
-- indexed by end time and by volunteer. The hours count from arrival, or from acceptance
-- (promotion for one who stood by) when nobody checked them in; `basis` says which. A drill's
-- hours are training hours (`mode`).
local function service(id, n, c, ended, how)
  if not c.v then return end
  local start, basis = c.ra, 'arrival'
  if not start then
    start, basis = c.pa or c.aa, 'acceptance'
  end
  if not start then return end
  local inc = redis.call('HMGET', BASE, 'kind', 'region', 'title', 'mode')
  local key = id .. '.' .. n
  local rec = cjson.encode({
    id = key, volunteer = c.v, incident = id, n = tostring(n), requirement = c.r or '',
    team = c.tm or '', kind = inc[1] or '', region = inc[2] or '', title = inc[3] or '',
    mode = inc[4] or 'live', accepted_at = c.pa or c.aa or '', arrived_at = c.ra or '',
    start = start, ended_at = ended, ended = how, basis = basis,
  })
  if redis.call('HSETNX', SVC, key, rec) == 1 then
    redis.call('ZADD', SVC_TIME, ended, key)
    redis.call('ZADD', SVC_VOL, 0, c.v .. '|' .. string.format('%015d', tonumber(ended)) .. '|' .. key)
  end
end

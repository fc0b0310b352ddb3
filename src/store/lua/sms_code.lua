-- The reply code of one callout for one phone number: the code it already has, or the next
-- code (two digits, 10–99; three, 100–999, once every two-digit code is taken) that no other
-- callout of this number holds: a code stays bound to its callout for the reuse window, and
-- beyond it for as long as that callout is still open (the caller names those), however long
-- the incident lasts — so no late reply can answer a newer call-out. Codes are handed out
-- round-robin from a cursor, so a code comes back as late as possible.
-- The hash has no TTL (a callout may stay open for weeks); it stays small because codes past
-- the window whose callouts are over are pruned (the caller names those too), and it is
-- bounded by the code space. Erasure deletes it.
-- KEYS[1] the number's hash (`c:CODE` → "callout|issued ms", `r:CALLOUT` → code, `next`)
-- ARGV[1] callout ("incident.n")   ARGV[2] now (ms)   ARGV[3] reuse window (ms)
-- ARGV[4] '1' when the caller names the codes past the window (below), '0' when it has not
--         looked: then, if the number holds any such code, the answer is '?' and the caller
--         looks (their callouts live under other keys) and asks again — so the usual case,
--         nothing past the window, takes one round trip
-- ARGV[5..] "+CALLOUT": a callout past the window still open (its code stays bound);
--           "-CODE": a code past the window whose callout is over (pruned)
local have = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if have then return have end
if ARGV[4] ~= '1' then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local at = string.sub(all[i], 1, 2) == 'c:' and string.match(all[i + 1], '|(%d+)$')
    if at and tonumber(ARGV[2]) - tonumber(at) >= tonumber(ARGV[3]) then return '?' end
  end
end
local keep = {}
for i = 5, #ARGV do
  local a = ARGV[i]
  if string.sub(a, 1, 1) == '+' then
    keep[string.sub(a, 2)] = true
  else
    local code = string.sub(a, 2)
    local cur = redis.call('HGET', KEYS[1], 'c:' .. code)
    local ref = cur and string.match(cur, '^(.*)|%d+$')
    if ref and not keep[ref] then
      redis.call('HDEL', KEYS[1], 'c:' .. code, 'r:' .. ref)
    end
  end
end
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local cursor = tonumber(redis.call('HGET', KEYS[1], 'next') or '10')
for _, range in ipairs({{10, 99}, {100, 999}}) do
  local lo, hi = range[1], range[2]
  local span = hi - lo + 1
  local start = cursor
  if start < lo or start > hi then start = lo end
  for i = 0, span - 1 do
    local code = lo + (start - lo + i) % span
    local cur = redis.call('HGET', KEYS[1], 'c:' .. code)
    local free = true
    if cur then
      local ref, at = string.match(cur, '^(.*)|(%d+)$')
      if (at and now - tonumber(at) < window) or (ref and keep[ref]) then
        free = false
      elseif ref then
        redis.call('HDEL', KEYS[1], 'r:' .. ref)
      end
    end
    if free then
      redis.call('HSET', KEYS[1], 'c:' .. code, ARGV[1] .. '|' .. ARGV[2], 'r:' .. ARGV[1], code,
        'next', code + 1)
      redis.call('PERSIST', KEYS[1])
      return tostring(code)
    end
  end
end
return ''

-- Moves due delivery retries from the delayed set to the delivery stream. Atomic, so exactly
-- one instance moves each retry.
-- KEYS[1] partition delayed set   KEYS[2] partition delivery stream
-- ARGV[1] now (ms)   ARGV[2] max to move
-- Members are "incident|n|kind|attempt" (a callout's message), or a JSON array of the entry's
-- field names and values (any other entry, e.g. a command-centre alert).
-- Returns the number moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  if string.sub(m, 1, 1) == '[' then
    local ok, fields = pcall(cjson.decode, m)
    if ok and type(fields) == 'table' and #fields >= 2 and #fields % 2 == 0 then
      redis.call('XADD', KEYS[2], '*', unpack(fields))
    end
  else
    local i, n, k, a = string.match(m, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
    if i then
      redis.call('XADD', KEYS[2], '*', 'i', i, 'ns', n, 'k', k, 'a', a)
    end
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due

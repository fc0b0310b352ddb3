-- Enqueues an SMS note (the answer to one inbound reply) once: the note's id is derived from
-- the reply, and its mark is set in the same step as the entry is added, so a retry after a
-- lost answer (a slow Redis, a restart) finds the mark and adds nothing.
-- KEYS[1] partition delivery stream   KEYS[2] the note's mark (same partition tag)
-- ARGV[1] mark TTL (s)   ARGV[2..] the entry's field names and values
-- Returns 1 when enqueued, 0 when it already was.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return 0
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return 1

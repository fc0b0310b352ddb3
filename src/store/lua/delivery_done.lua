-- Records the outcome of one delivery attempt and acknowledges its queue entry, atomically.
-- KEYS[1] incident base key   KEYS[2] partition delivery stream   KEYS[3] partition delayed set
-- ARGV[1] n   ARGV[2] kind   ARGV[3] outcome: ok | retry | failed   ARGV[4] now
-- ARGV[5] stream entry id ('' if none)   ARGV[6] consumer group
-- ARGV[7] retry due time (ms)   ARGV[8] retry member   ARGV[9] detail (channel or error)
local base, n, kind, outcome, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local co = base .. ':co:' .. n
if redis.call('EXISTS', co) == 1 then
  redis.call('HDEL', co, 'if_' .. kind)
  local cs = redis.call('HMGET', co, 'st', 'r')
  if outcome == 'ok' then
    redis.call('HSET', co, 'ok_' .. kind, now)
    if kind == 'callout' then
      redis.call('HSET', co, 'na', now, 'ch', ARGV[9])
      if cs[1] == 'pending' then
        move(co, base .. ':counts', cs[2], 'pending', 'notified')
        event(base, 'type', 'callout.notified', 'at', now, 'n', n, 'requirement', cs[2], 'channel', ARGV[9])
      end
    end
  elseif outcome == 'retry' then
    redis.call('HSET', co, 'err', ARGV[9])
    redis.call('ZADD', KEYS[3], ARGV[7], ARGV[8])
  else
    redis.call('HSET', co, 'err', ARGV[9])
    if kind == 'callout' and cs[1] == 'pending' then
      move(co, base .. ':counts', cs[2], 'pending', 'failed')
      event(base, 'type', 'callout.failed', 'at', now, 'n', n, 'requirement', cs[2], 'reason', ARGV[9])
    end
  end
end
if ARGV[5] ~= '' then redis.call('XACK', KEYS[2], ARGV[6], ARGV[5]) end
return 1

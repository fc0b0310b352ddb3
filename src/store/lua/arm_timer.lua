-- Arms the end of an escalation step's wait, once. The `due@STEP` mark in the incident's
-- counts records the first arming; a step that was armed before (even one whose timer has
-- fired and left the set) is not armed again, so re-running a step never fires it twice.
-- KEYS[1] partition timer zset   KEYS[2] incident counts hash
-- ARGV[1] mark field "req:due@step"   ARGV[2] due (ms)   ARGV[3] member "incident|req|step"
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
end
return 0

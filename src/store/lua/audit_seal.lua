-- Records the MACs of newly sealed audit entries and moves the chain's head, only if the head
-- is still where the sealer read it (another sealer may have moved it meanwhile).
-- KEYS[1] the chain's MAC hash   KEYS[2] the chain's head hash
-- ARGV[1] the last id the sealer read ("" for none)   ARGV[2] new last id   ARGV[3] new count
-- ARGV[4] new last MAC   ARGV[5] the head's MAC   ARGV[6..] id, MAC pairs
-- Returns 1 when sealed, 0 when the head had moved.
local last = redis.call('HGET', KEYS[2], 'last_id') or ''
if last ~= ARGV[1] then return 0 end
local pairs_ = {}
for i = 6, #ARGV do pairs_[#pairs_ + 1] = ARGV[i] end
if #pairs_ > 0 then redis.call('HSET', KEYS[1], unpack(pairs_)) end
redis.call('HSET', KEYS[2], 'last_id', ARGV[2], 'count', ARGV[3], 'last_mac', ARGV[4], 'mac', ARGV[5])
return 1

-- purge_dead: delete up to N of the oldest dead-lettered jobs (their records go too)
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors
-- ARGV[1] max jobs to delete in this call
-- returns: the number deleted
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(ids))
redis.call('HDEL', KEYS[2], unpack(ids))
redis.call('HDEL', KEYS[3], unpack(ids))
redis.call('HDEL', KEYS[4], unpack(ids))
return #ids

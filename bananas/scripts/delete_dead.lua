-- delete_dead: delete one dead-lettered job and its record
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors
-- ARGV[1] job id
-- returns: 1 when the job was dead-lettered and is gone, 0 when it was not dead-lettered
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1

-- lead: take or keep the leader lock; every change of holder bumps the fencing token
-- KEYS[1] leader lock  KEYS[2] fencing token counter
-- ARGV[1] identity  ARGV[2] lease ms  ARGV[3] "release" to give the lock up instead
-- returns: the fencing token while ARGV[1] holds the lock, else false
local holder = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return false
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
if holder then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])

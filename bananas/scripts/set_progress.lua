#!lua flags=allow-oom
-- set_progress: record a running job's progress and tell its watchers
-- KEYS[1] the job's progress (route:{r}:progress:<id>)  KEYS[2] leases  KEYS[3] attempts
-- KEYS[4..] the watch lists of the job's watchers (read from route:{r}:watchers:<id> just
--   before; a watcher that arrives in between reads the progress key when it starts)
-- ARGV[1] job id  ARGV[2] attempt (lease token)  ARGV[3] progress JSON  ARGV[4] ttl ms
-- (allow-oom: a few bytes, from a job that is running anyway)
-- returns: 1 recorded, 0 refused (the lease is no longer this attempt's)
local id = ARGV[1]
if not redis.call('ZSCORE', KEYS[2], id) or redis.call('HGET', KEYS[3], id) ~= ARGV[2] then
  return 0
end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
for i = 4, #KEYS do
  wake(KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1

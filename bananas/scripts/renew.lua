#!lua flags=allow-oom
-- renew: extend the leases a worker still holds, in one batch (the heartbeat)
-- (allow-oom: it needs no new memory, and a full Redis must not reap running jobs)
-- KEYS[1] leases  KEYS[2] attempts
-- ARGV[1] lease ms (the new deadline is Redis' TIME plus it), then per job: id, attempt
-- returns: the ids whose lease is no longer this worker's (reaped, or re-delivered)
local deadline = now_ms() + tonumber(ARGV[1])
local lost = {}
for b = 2, #ARGV, 2 do
  local id = ARGV[b]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[2], id) == ARGV[b + 1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost

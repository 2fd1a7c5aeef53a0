-- renew: extend the leases a worker still holds, in one batch (the heartbeat)
-- KEYS[1] leases  KEYS[2] attempts
-- ARGV[1] new deadline ms, then per job: id, attempt (lease token)
-- returns: the ids whose lease is no longer this worker's (reaped, or re-delivered)
local lost = {}
for b = 2, #ARGV, 2 do
  local id = ARGV[b]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[2], id) == ARGV[b + 1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost

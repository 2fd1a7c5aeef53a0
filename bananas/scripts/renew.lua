#!lua flags=allow-oom
-- renew: extend the leases a worker still holds, in one batch (the heartbeat)
-- (allow-oom: it needs no new memory, and a full Redis must not reap running jobs)
-- KEYS[1] leases  KEYS[2] attempts  KEYS[3] (when given) the due index of leases (see the
-- prelude): lowered when a renewal brings a deadline forward (a shorter lease than before)
-- ARGV[1] lease ms (the new deadline is Redis' TIME plus it), then per job: id, attempt
-- returns: the ids whose lease is no longer this worker's (reaped, or re-delivered)
local deadline = now_ms() + tonumber(ARGV[1])
local lost = {}
local sooner = false  -- a deadline brought forward
for b = 2, #ARGV, 2 do
  local id = ARGV[b]
  local was = redis.call('ZSCORE', KEYS[1], id)
  if was and redis.call('HGET', KEYS[2], id) == ARGV[b + 1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
    if deadline < tonumber(was) then sooner = true end
  else
    lost[#lost + 1] = id
  end
end
if sooner and #KEYS >= 3 then lower_due(3, KEYS[1], deadline) end
return lost

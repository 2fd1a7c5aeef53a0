#!lua flags=allow-oom
-- release: hand leased jobs straight back to the head of their queue (graceful shutdown)
-- KEYS[1] leases  KEYS[2] attempts  KEYS[3] wake
-- KEYS[4] queue:high  KEYS[5] queue:normal  KEYS[6] queue:low
-- ARGV per job: id, attempt (lease token), priority index (1 high, 2 normal, 3 low),
--   group ('' for none)
-- When a job of a group is in the batch: then the flow keys (see the prelude); such a job
-- goes back to the head of its group and gives back its concurrency slot.
-- (allow-oom: handing jobs back needs no new memory)
-- returns: the number of jobs released; the delivery that never ran is not counted
local released = 0
for b = 1, #ARGV, 4 do
  local id = ARGV[b]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[2], id) == ARGV[b + 1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HINCRBY', KEYS[2], id, -1)
    local p = tonumber(ARGV[b + 2])
    if ARGV[b + 3] ~= '' then  -- flow
      local F = flow_keys()
      return_slot(F, 4, id)
      push_grouped(F, queue_key(4, p), p, ARGV[b + 3], id, true)
    else
      redis.call('LPUSH', queue_key(4, p), id)
    end
    released = released + 1
  end
end
if released > 0 then wake(KEYS[3]) end
return released

-- workflow_resume: dead-lettered nodes were requeued from the dead-letter queue: count
-- them as queued again, and put the workflow back to running when none is left dead
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state
-- KEYS[6] results  KEYS[7] errors  KEYS[8] notify
-- ARGV: the requeued nodes
-- returns: how many nodes were dead and are queued again (0 for an unknown workflow: the
--          caller only guessed from a job id that it may be a workflow's node)
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'failed' then return 0 end
local resumed = 0
for _, node in ipairs(ARGV) do
  if redis.call('HGET', KEYS[5], node) == 'dead' and redis.call('HGET', KEYS[2], 'tol:' .. node) ~= '1' then
    redis.call('HSET', KEYS[5], node, 'queued')
    redis.call('HINCRBY', KEYS[1], 'failed', -1)
    resumed = resumed + 1
  end
end
if resumed > 0 and status == 'failed' and tonumber(redis.call('HGET', KEYS[1], 'failed')) <= 0 then
  redis.call('HSET', KEYS[1], 'status', 'running')
  redis.call('HDEL', KEYS[1], 'error', 'failed_node', 'finished')
  for k = 1, 7 do redis.call('PERSIST', KEYS[k]) end
  redis.call('DEL', KEYS[8])  -- the failure's token would wake waiters of the resumed run
end
return resumed

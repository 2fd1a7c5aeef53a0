-- workflow_start: record that a workflow's roots are queued (the sweep leaves it alone)
-- KEYS[1] meta  KEYS[2] roots
-- returns: 1 recorded; 0 the workflow is gone (finished and expired, or abandoned)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'abandoned' then return 0 end
redis.call('HSET', KEYS[1], 'started', 1)
redis.call('DEL', KEYS[2])
return 1

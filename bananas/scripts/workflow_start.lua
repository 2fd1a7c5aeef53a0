-- workflow_start: record that a workflow's roots are queued (the sweep leaves it alone)
-- KEYS[1] meta
-- returns: 1 recorded; 0 the workflow is gone (finished and expired, or abandoned)
if redis.call('HGET', KEYS[1], 'status') == false then return 0 end
redis.call('HSET', KEYS[1], 'started', 1)
return 1

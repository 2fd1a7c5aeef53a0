-- inspect: read one job's record and derive its state (read-only)
-- KEYS[1] jobs  KEYS[2] attempts  KEYS[3] errors  KEYS[4] leases  KEYS[5] scheduled
-- KEYS[6] dead  KEYS[7] result  KEYS[8] the job's progress (set_progress.lua)
-- ARGV[1] job id
-- returns: {record or false, attempts, error, state, scheduled ms, result JSON or false,
--           record stored with the result or false, progress JSON or false}
-- state: 'processing', 'scheduled', 'failed' (dead-lettered), 'pending', or '' (no live record)
local id = ARGV[1]
local record = redis.call('HGET', KEYS[1], id)
local attempts = redis.call('HGET', KEYS[2], id) or '0'
local err = redis.call('HGET', KEYS[3], id) or ''
local state = ''
local due = redis.call('ZSCORE', KEYS[5], id) or '0'
if record then
  if redis.call('ZSCORE', KEYS[4], id) then state = 'processing'
  elseif due ~= '0' then state = 'scheduled'
  elseif redis.call('ZSCORE', KEYS[6], id) then state = 'failed'
  else state = 'pending' end
end
local stored = redis.call('HMGET', KEYS[7], 'result', 'job')
return { record, attempts, err, state, due, stored[1], stored[2],
         redis.call('GET', KEYS[8]) }  -- progress

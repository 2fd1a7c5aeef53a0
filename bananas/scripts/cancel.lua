-- cancel: cancel a job that has not started (ready or scheduled)
-- KEYS[1] jobs  KEYS[2] attempts  KEYS[3] errors  KEYS[4] leases  KEYS[5] scheduled  KEYS[6] dead
-- KEYS[7] queue:high  KEYS[8] queue:normal  KEYS[9] queue:low  KEYS[10] result  KEYS[11] notify
-- KEYS[12] stats  KEYS[13..21] the flow keys (see the prelude: a job of a group waits there)
-- ARGV[1] job id  ARGV[2] cancelled result JSON  ARGV[3] result ttl ms  ARGV[4] notify ttl ms
-- returns: 'cancelled', or the state that prevented it: 'processing', 'failed', 'finished',
--          or 'missing' when no such job exists
local id = ARGV[1]
local record = redis.call('HGET', KEYS[1], id)
if not record then
  if redis.call('EXISTS', KEYS[10]) == 1 then return 'finished' end
  return 'missing'
end
if redis.call('ZSCORE', KEYS[4], id) then return 'processing' end
if redis.call('ZSCORE', KEYS[6], id) then return 'failed' end
local removed = redis.call('ZREM', KEYS[5], id)
if removed == 0 then
  local job = decode_record(record)
  if type(job['group']) == 'string' then  -- flow
    if remove_grouped(flow_keys(), priority_of(job), id) then removed = 1 end
  else
    for p = 1, 3 do
      removed = removed + redis.call('LREM', queue_key(7, p), 1, id)
    end
  end
end
if removed == 0 then return 'processing' end
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
write_result(KEYS[10], KEYS[11], ARGV[2], record, tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[12], 'cancelled', 1)
return 'cancelled'

-- workflow_cancel: stop a workflow: no node that has not been queued will be
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state
-- KEYS[6] results  KEYS[7] errors  KEYS[8] notify
-- ARGV[1] now ms  ARGV[2] notify ttl ms
-- returns: {status before, queued node, ...}: the caller cancels those nodes' jobs on their
--          routing keys (a job already running finishes); {'missing'} for an unknown workflow
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'abandoned' then return {'missing'} end
if status ~= 'running' and status ~= 'failed' then return {status} end
local out = {status}
local state = redis.call('HGETALL', KEYS[5])
for i = 1, #state, 2 do
  if state[i + 1] == 'waiting' then
    redis.call('HSET', KEYS[5], state[i], 'cancelled')
  elseif state[i + 1] == 'queued' then
    out[#out + 1] = state[i]
  end
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'failure_ttl')) or 0
if ttl <= 0 then ttl = tonumber(ARGV[2]) end
for k = 1, 7 do redis.call('PEXPIRE', KEYS[k], ttl) end
redis.call('RPUSH', KEYS[8], 1)
redis.call('PEXPIRE', KEYS[8], tonumber(ARGV[2]))
return out

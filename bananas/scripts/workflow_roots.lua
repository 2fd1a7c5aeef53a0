-- workflow_roots: the sweep's look at a workflow whose client may have died mid-submit
-- KEYS[1] meta  KEYS[2] specs
-- ARGV[1] now ms  ARGV[2] tombstone ttl ms
-- returns: {'abandoned'} when no graph was stored (a tombstone now refuses a late submit),
--          {'started'} when its roots were queued already (or it finished or was cancelled),
--          {'unstarted', node, spec, node, spec, ...}: the roots to queue
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'abandoned', 'created', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return {'abandoned'}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' or redis.call('HGET', KEYS[1], 'started') == '1' then return {'started'} end
local out = {'unstarted'}
for node in string.gmatch(redis.call('HGET', KEYS[1], 'roots') or '', '[^,]+') do
  out[#out + 1] = node
  out[#out + 1] = redis.call('HGET', KEYS[2], node) or ''
end
return out

-- workflow_roots: one page of the roots still to queue of a workflow that is not started
-- KEYS[1] meta  KEYS[2] specs  KEYS[3] roots
-- ARGV[1] now ms  ARGV[2] tombstone ttl ms  ARGV[3] offset  ARGV[4] page size
-- returns: {'abandoned'} when no graph was committed (a tombstone now refuses a late
--          commit), or when one was planted before;
--          {'started'} when its roots were queued already (or it finished or was cancelled);
--          {'unstarted', root count, node, spec, node, spec, ...}: this page of roots to queue
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'abandoned', 'created', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return {'abandoned'}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'abandoned' then return {'abandoned'} end
if status ~= 'running' or redis.call('HGET', KEYS[1], 'started') == '1' then return {'started'} end
local first = tonumber(ARGV[3])
local out = {'unstarted', redis.call('LLEN', KEYS[3])}
for _, node in ipairs(redis.call('LRANGE', KEYS[3], first, first + tonumber(ARGV[4]) - 1)) do
  out[#out + 1] = node
  out[#out + 1] = redis.call('HGET', KEYS[2], node) or ''
end
return out

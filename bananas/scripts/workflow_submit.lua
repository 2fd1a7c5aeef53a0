-- workflow_submit: commit a staged graph (workflow_stage): from here the workflow exists
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state  KEYS[6] roots
-- ARGV[1] now ms  ARGV[2] output shape (JSON)  ARGV[3] success ttl ms  ARGV[4] failure ttl ms
-- ARGV[5] name (a label for listings)  ARGV[6] node count
-- returns: 1 committed; 0 the id exists (a resubmit, or a sweep that abandoned this id);
--          an error when fewer nodes are staged than ARGV[6] (the staged slices expired)
-- Either the whole graph becomes visible here, in one step, or none of it ever does.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local staged = redis.call('HLEN', KEYS[5])
if staged ~= tonumber(ARGV[6]) then
  return redis.error_reply('ERR workflow_submit: ' .. staged .. ' of ' .. ARGV[6] .. ' nodes staged')
end
for k = 2, 6 do redis.call('PERSIST', KEYS[k]) end
redis.call('HSET', KEYS[1], 'status', 'running', 'created', ARGV[1], 'total', ARGV[6],
           'remaining', ARGV[6], 'failed', 0, 'output', ARGV[2], 'success_ttl', ARGV[3],
           'failure_ttl', ARGV[4], 'name', ARGV[5], 'started', 0)
return 1

-- results: the stored result and record of each job of a page of the results index (read-only)
-- KEYS[1..n] the jobs' result hashes (route:{r}:result:<id>), all of one routing key
-- returns: flat array of result, job record per key (false where a hash or field is gone)
local out = {}
for i = 1, #KEYS do
  local stored = redis.call('HMGET', KEYS[i], 'result', 'job')
  out[2 * i - 1] = stored[1]
  out[2 * i] = stored[2]
end
return out

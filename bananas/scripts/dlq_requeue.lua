-- dlq_requeue: move dead-lettered jobs back to the tail of their queue with a fresh retry budget
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] wake
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low
-- KEYS[8+i] result key of the i-th job (the old failure result is dropped)
-- ARGV per job: job id
-- returns: the number of jobs requeued
local priority_index = { high = 6, normal = 7, low = 8 }
local moved = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      local ok, job = pcall(cjson.decode, record)
      local queue = 7
      if ok and type(job) == 'table' then queue = priority_index[job['priority']] or 7 end
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      redis.call('DEL', KEYS[8 + i])
      redis.call('RPUSH', KEYS[queue], id)
      moved = moved + 1
    end
  end
end
if moved > 0 and redis.call('LLEN', KEYS[5]) == 0 then redis.call('RPUSH', KEYS[5], 1) end
return moved

-- reap: return jobs whose lease expired to the head of their queue, or dead-letter poison jobs
-- KEYS[1] leases  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] dead  KEYS[7] wake  KEYS[8] queue:high  KEYS[9] queue:normal  KEYS[10] queue:low
-- KEYS[9+2i] result key, KEYS[10+2i] notify key of the i-th candidate (i from 1)
-- ARGV[1] now ms  ARGV[2] notify ttl ms  ARGV[3] completed_at (ISO text, for failure results)
-- then per candidate: job id (read beforehand from the expired range of leases)
-- returns: {requeued, dead-lettered}
-- A job was already counted as delivered when it was fetched; once it has been delivered
-- max_retries + 1 times without an ack it is poison and goes to the dead-letter queue.
local now = tonumber(ARGV[1])
local requeued, dead = 0, 0
local priority_index = { high = 8, normal = 9, low = 10 }
for i = 0, #ARGV - 4 do
  local id = ARGV[4 + i]
  local deadline = redis.call('ZSCORE', KEYS[1], id)
  if deadline and tonumber(deadline) <= now then
    redis.call('ZREM', KEYS[1], id)
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      local ok, job = pcall(cjson.decode, record)
      if not ok or type(job) ~= 'table' then job = {} end
      local attempts = tonumber(redis.call('HGET', KEYS[3], id) or '0')
      local max_retries = tonumber(job['max_retries']) or 0
      if attempts > max_retries then
        local reason = 'lease expired ' .. attempts .. ' times: the worker running it was lost'
        redis.call('HSET', KEYS[4], id, reason)
        redis.call('ZADD', KEYS[6], now, id)
        local ttl = math.floor((tonumber(job['failure_ttl']) or 86400) * 1000)
        if ttl <= 0 then ttl = tonumber(ARGV[2]) end  -- kept briefly for waiters, as _kept()
        local result_key = KEYS[11 + 2 * i]
        local result = cjson.encode({ job_id = id, status = 'failed', error = reason,
                                      completed_at = ARGV[3], duration = 0 })
        if ttl > 0 then
          redis.call('HSET', result_key, 'result', result, 'job', record)
          redis.call('PEXPIRE', result_key, ttl)
        end
        redis.call('RPUSH', KEYS[12 + 2 * i], 1)
        redis.call('PEXPIRE', KEYS[12 + 2 * i], tonumber(ARGV[2]))
        dead = dead + 1
      else
        redis.call('HSET', KEYS[4], id, 'lease expired: the worker running it was lost')
        redis.call('LPUSH', KEYS[priority_index[job['priority']] or 9], id)
        requeued = requeued + 1
      end
    end
  end
end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[5], 'reaped', requeued)
  if redis.call('LLEN', KEYS[7]) == 0 then redis.call('RPUSH', KEYS[7], 1) end
end
if dead > 0 then redis.call('HINCRBY', KEYS[5], 'failed', dead) end
return { requeued, dead }

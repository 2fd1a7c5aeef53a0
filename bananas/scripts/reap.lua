-- reap: return jobs whose lease expired to the head of their queue, or dead-letter poison jobs
-- KEYS[1] leases  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] dead  KEYS[7] wake  KEYS[8] queue:high  KEYS[9] queue:normal  KEYS[10] queue:low
-- KEYS[9+2i] result key, KEYS[10+2i] notify key of the i-th candidate (i from 1)
-- ARGV[1] now ms  ARGV[2] notify ttl ms  ARGV[3] completed_at (ISO text, for failure results)
-- ARGV[4] failure result ttl ms for a record that names none
-- then per candidate: job id (read beforehand from the expired range of leases)
-- returns: {requeued, dead-lettered}
-- A job was already counted as delivered when it was fetched; once it has been delivered
-- max_retries + 1 times without an ack it is poison and goes to the dead-letter queue.
local now = tonumber(ARGV[1])
local notify_ttl = tonumber(ARGV[2])
local requeued, dead = 0, 0
for i = 0, #ARGV - 5 do
  local id = ARGV[5 + i]
  local deadline = redis.call('ZSCORE', KEYS[1], id)
  if deadline and tonumber(deadline) <= now then
    redis.call('ZREM', KEYS[1], id)
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      local job = decode_record(record)
      local attempts = tonumber(redis.call('HGET', KEYS[3], id) or '0')
      local max_retries = tonumber(job['max_retries']) or 0
      if attempts > max_retries then
        local reason = 'lease expired ' .. attempts .. ' times: the worker running it was lost'
        dead_letter(KEYS[6], KEYS[4], id, now, reason)
        local ttl_s = tonumber(job['failure_ttl'])
        local ttl = ttl_s and math.floor(ttl_s * 1000) or tonumber(ARGV[4])
        if ttl <= 0 then ttl = notify_ttl end  -- kept briefly for waiters, as _kept()
        local result = cjson.encode({ job_id = id, status = 'failed', error = reason,
                                      completed_at = ARGV[3], duration = 0 })
        write_result(KEYS[11 + 2 * i], KEYS[12 + 2 * i], result, record, ttl, notify_ttl)
        dead = dead + 1
      else
        redis.call('HSET', KEYS[4], id, 'lease expired: the worker running it was lost')
        redis.call('LPUSH', queue_key(8, priority_of(job)), id)
        requeued = requeued + 1
      end
    end
  end
end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[5], 'reaped', requeued)
  wake(KEYS[7])
end
if dead > 0 then redis.call('HINCRBY', KEYS[5], 'failed', dead) end
return { requeued, dead }

#!lua flags=allow-oom
-- reap: return jobs whose lease expired to the head of their queue, or dead-letter poison jobs
-- KEYS[1] leases  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] dead  KEYS[7] wake  KEYS[8] queue:high  KEYS[9] queue:normal  KEYS[10] queue:low
-- KEYS[9+2i] result key, KEYS[10+2i] notify key of the i-th candidate (i from 1)
-- (allow-oom: returning expired leases needs no new memory, and must go on when full)
-- ARGV[1] longest result ttl ms (a record's failure_ttl beyond it is ignored)  ARGV[2] notify ttl ms  ARGV[3] completed_at (ISO text, for failure results)
-- ARGV[4] failure result ttl ms for a record that names none
-- then per candidate: job id (read beforehand from the expired range of leases)
-- KEYS end with the flow keys (see the prelude): a job of a group goes back to the head
-- of its group, and gives back its concurrency slot either way.
-- returns: {requeued, dead-lettered, then per dead-lettered workflow step: job id, reason}
--          (the caller records those steps on their workflows: see workflow_advance)
-- A job was already counted as delivered when it was fetched; once it has been delivered
-- max_retries + 1 times without an ack it is poison and goes to the dead-letter queue.
local now = now_ms()
local notify_ttl = tonumber(ARGV[2])
local requeued, dead = 0, 0
local freed = false  -- flow: a parked group token went back to its queue
local steps = {}
for i = 0, #ARGV - 5 do
  local id = ARGV[5 + i]
  local deadline = redis.call('ZSCORE', KEYS[1], id)
  if deadline and tonumber(deadline) <= now then
    redis.call('ZREM', KEYS[1], id)
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      local job = decode_record(record)
      local counted = redis.call('HGET', KEYS[3], id)
      local attempts = tonumber(counted or '0')
      local max_retries = tonumber(job['max_retries']) or 0
      local group = type(job['group']) == 'string' and job['group'] or nil  -- flow
      if group and return_slot(flow_keys(), 8, id) then freed = true end
      if not valid_count(counted) or attempts > max_retries then
        local reason = 'lease expired ' .. tostring(attempts) .. ' times: the worker running it was lost'
        if not valid_count(counted) then
          reason = 'bad job record: attempts counter ' .. string.format('%q', counted) ..
                   ' is not a whole number'
        end
        dead_letter(KEYS[6], KEYS[4], id, now, reason)
        local ttl_s = tonumber(job['failure_ttl'])
        local ttl = tonumber(ARGV[4])
        -- a record's own TTL only if Redis can store it (not NaN, inf or 1e20)
        if ttl_s and ttl_s == ttl_s and ttl_s >= 0 and ttl_s * 1000 <= tonumber(ARGV[1]) then
          ttl = math.floor(ttl_s * 1000)
        end
        if ttl <= 0 then ttl = notify_ttl end  -- kept briefly for waiters, as _kept()
        local result = cjson.encode({ job_id = id, status = 'failed', error = reason,
                                      completed_at = ARGV[3], duration = 0 })
        write_result(KEYS[11 + 2 * i], KEYS[12 + 2 * i], result, record, ttl, notify_ttl)
        dead = dead + 1
        if job['workflow_id'] then
          steps[#steps + 1] = id
          steps[#steps + 1] = reason
        end
      else
        redis.call('HSET', KEYS[4], id, 'lease expired: the worker running it was lost')
        local p = priority_of(job)
        if group then push_grouped(flow_keys(), queue_key(8, p), p, group, id, true)
        else redis.call('LPUSH', queue_key(8, p), id) end
        requeued = requeued + 1
      end
    end
  end
end
if requeued > 0 then redis.call('HINCRBY', KEYS[5], 'reaped', requeued) end
if requeued > 0 or freed then wake(KEYS[7]) end
if dead > 0 then redis.call('HINCRBY', KEYS[5], 'failed', dead) end
local out = { requeued, dead }
for _, v in ipairs(steps) do out[#out + 1] = v end
return out

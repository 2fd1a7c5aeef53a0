#!lua flags=allow-oom
-- fail: record failed attempts of leased jobs: schedule a retry, or dead-letter the job
-- KEYS[1] leases  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] scheduled  KEYS[7] dead  KEYS[8] schedwake  KEYS[9] retention
-- KEYS[8+2i] result key, KEYS[9+2i] notify key of the i-th job (i from 1)
-- KEYS[10+2n] throughput hash of the current hour (n jobs)
-- KEYS[11+2n], KEYS[12+2n] timing hashes of the current hour and day (per minute, per hour)
-- KEYS[13+2n] (when ARGV[1] names it) the due index of scheduled jobs (see the prelude)
-- When a job of a group is in the batch: then the wake list, the three queues and the flow
-- keys (see the prelude), and a job of a group gives back its concurrency slot.
-- (allow-oom: a failed attempt is finished work, recorded even when Redis is full)
-- ARGV[1] the KEYS position of the due index of scheduled jobs (0: none, on Cluster)
-- ARGV[2] notify ttl ms  ARGV[3] dead-letter cap (count)
-- ARGV[4] dead-letter max age ms
-- ARGV[5] most dead-lettered jobs aged out per call
-- ARGV[6] current epoch minute  ARGV[7] throughput ttl ms
-- ARGV[#ARGV-2], ARGV[#ARGV-1], ARGV[#ARGV] timing ttls and bucket counts, as in ack.lua
-- then per job: id, attempt (lease token), error, retry in ms from now (-1: dead-letter now),
--               failure result JSON, failure result ttl ms, the record to keep with a
--               dead-lettered job's result ('' keeps the stored one; see ack.lua),
--               group ('' for none)
-- returns: array per job: 1 retry scheduled, 2 dead-lettered, 0 refused (stale token); then
--   one more element: how many dead-lettered jobs the retention trimmed
-- Retention: the routing key's retention hash (KEYS[9]: max_dead, max_dead_age_ms) overrides
--   ARGV[3] and ARGV[4] (the defaults); read only when a job is dead-lettered.
local now = now_ms()
local notify_ttl = tonumber(ARGV[2])
local out = {}
local n = (#ARGV - 10) / 8
local freed = false  -- flow: a parked group token went back to its queue
local dead, retried = 0, 0
local trimmed = 0
local soonest = nil  -- the earliest retry this call scheduled
for i = 0, n - 1 do
  local b = 8 + i * 8
  local id = ARGV[b]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[3], id) == ARGV[b + 1] then
    redis.call('ZREM', KEYS[1], id)
    if ARGV[b + 7] ~= '' and return_slot(flow_keys(), flow_queues(), id) then freed = true end
    local retry_in = tonumber(ARGV[b + 3])
    if retry_in >= 0 then
      local retry_at = now + retry_in
      redis.call('HSET', KEYS[4], id, ARGV[b + 2])
      local earliest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')[2]
      redis.call('ZADD', KEYS[6], retry_at, id)
      if soonest == nil or retry_at < soonest then soonest = retry_at end
      if earliest == nil or retry_at < tonumber(earliest) then wake(KEYS[8]) end
      retried = retried + 1
      out[i + 1] = 1
    else
      dead_letter(KEYS[7], KEYS[4], id, now, ARGV[b + 2])
      local kept = ARGV[b + 6]
      if kept == '' then kept = redis.call('HGET', KEYS[2], id) end
      write_result(KEYS[8 + 2 * (i + 1)], KEYS[9 + 2 * (i + 1)], ARGV[b + 4],
                   kept, tonumber(ARGV[b + 5]), notify_ttl)
      dead = dead + 1
      out[i + 1] = 2
    end
  else
    out[i + 1] = 0
  end
end
local throughput = KEYS[10 + 2 * n]
if soonest then lower_due(tonumber(ARGV[1]), KEYS[6], soonest) end
if retried > 0 then
  redis.call('HINCRBY', KEYS[5], 'retried', retried)
  count_outcome(throughput, ARGV[6] .. ':r', retried, tonumber(ARGV[7]))
end
if dead > 0 then
  redis.call('HINCRBY', KEYS[5], 'failed', dead)
  count_outcome(throughput, ARGV[6] .. ':f', dead, tonumber(ARGV[7]))
  -- keep the dead-letter queue bounded: by age, then by count (oldest go first)
  local kept = redis.call('HMGET', KEYS[9], 'max_dead', 'max_dead_age_ms')  -- retention
  local cap = tonumber(kept[1]) or tonumber(ARGV[3])
  local max_age = tonumber(kept[2]) or tonumber(ARGV[4])
  local expired = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now - max_age, 'LIMIT', 0, tonumber(ARGV[5]))
  local over = redis.call('ZCARD', KEYS[7]) - #expired - cap
  if over > 0 then
    expired = redis.call('ZRANGE', KEYS[7], 0, #expired + over - 1)
  end
  if #expired > 0 then
    redis.call('ZREM', KEYS[7], unpack(expired))
    redis.call('HDEL', KEYS[2], unpack(expired))
    redis.call('HDEL', KEYS[3], unpack(expired))
    redis.call('HDEL', KEYS[4], unpack(expired))
    trimmed = #expired
  end
end
count_timings(KEYS[11 + 2 * n], KEYS[12 + 2 * n], ARGV[6], ARGV[#ARGV],
              tonumber(ARGV[#ARGV - 2]), tonumber(ARGV[#ARGV - 1]))
out[n + 1] = trimmed
if freed then wake(flow_wake()) end
return out

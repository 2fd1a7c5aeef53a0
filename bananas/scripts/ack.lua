#!lua flags=allow-oom
-- ack: complete a batch of leased jobs of one routing key and store their results
-- (allow-oom: finishing a job frees its record, so it must run when Redis is full)
-- KEYS[1] leases  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] stats
-- KEYS[4+2i] result key, KEYS[5+2i] notify key of the i-th job (i from 1)
-- KEYS[6+2n] throughput hash of the current hour (n jobs)
-- KEYS[7+2n], KEYS[8+2n] timing hashes of the current hour and day (per minute, per hour)
-- KEYS[9+2n] completed jobs index (newest ARGV[#ARGV-3] kept)
-- When a job of a group is in the batch: then the wake list, the three queues and the flow
-- keys (see the prelude), and a job of a group gives back its concurrency slot.
-- ARGV[1] notify ttl ms  ARGV[2] current epoch minute  ARGV[3] throughput ttl ms
-- ARGV[#ARGV-3] completed jobs index cap (count)
-- ARGV[#ARGV-2], ARGV[#ARGV-1] per-minute, per-hour timing ttl ms
-- ARGV[#ARGV] the batch's timing bucket counts ("<field> <count> ...", see count_timings)
-- then per job: id, attempt (lease token), result JSON, result ttl ms, the record to keep
--   with the result ('' keeps the stored one; a stand-in without its payload for a
--   record too big to keep a copy of for a whole TTL), group ('' for none)
-- returns: array with 1 (acked) or 0 (refused: stale token or lease gone) per job
local notify_ttl = tonumber(ARGV[1])
local out = {}
local done = {}
local n = (#ARGV - 7) / 6
local freed = false  -- flow: a parked group token went back to its queue
for i = 0, n - 1 do
  local b = 4 + i * 6
  local id = ARGV[b]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[3], id) == ARGV[b + 1] then
    local kept = ARGV[b + 4]
    if kept == '' then kept = redis.call('HGET', KEYS[2], id) end
    write_result(KEYS[6 + 2 * i], KEYS[7 + 2 * i], ARGV[b + 2], kept, tonumber(ARGV[b + 3]),
                 notify_ttl)
    done[#done + 1] = id
    out[i + 1] = 1
    if ARGV[b + 5] ~= '' and return_slot(flow_keys(), flow_queues(), id) then freed = true end
  else
    out[i + 1] = 0
  end
end
if #done > 0 then
  redis.call('ZREM', KEYS[1], unpack(done))
  redis.call('HDEL', KEYS[2], unpack(done))
  redis.call('HDEL', KEYS[3], unpack(done))
  redis.call('HDEL', KEYS[4], unpack(done))
  redis.call('HINCRBY', KEYS[5], 'completed', #done)
  count_outcome(KEYS[6 + 2 * n], ARGV[2] .. ':c', #done, tonumber(ARGV[3]))
  index_completed(KEYS[9 + 2 * n], done, tonumber(ARGV[#ARGV - 3]))
end
count_timings(KEYS[7 + 2 * n], KEYS[8 + 2 * n], ARGV[2], ARGV[#ARGV],
              tonumber(ARGV[#ARGV - 2]), tonumber(ARGV[#ARGV - 1]))
if freed then wake(flow_wake()) end
return out

#!lua
-- enqueue_unique: store one job under a unique key of its routing key, unless a live job
-- holds the key (unique_for); or, in debounce mode, give a still-pending holder this job's
-- record and due time
-- KEYS[1] jobs  KEYS[2] scheduled  KEYS[3] wake  KEYS[4] schedwake  KEYS[5] stats
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low  KEYS[9] leases  KEYS[10] dead
-- KEYS[11] the unique key's lock (route:{r}:unique:<key>, same slot): the holder's id as JSON
-- KEYS[12] (when ARGV[1] is 12) the due index of scheduled jobs (see the prelude)
-- (no allow-oom: under maxmemory a submit is refused before anything is written)
-- ARGV[1] the KEYS position of the due index of scheduled jobs (0: none, on Cluster)
-- ARGV[2] the new job's id as JSON (the record starts with {"id":<it>)
-- ARGV[3] priority index (1 high, 2 normal, 3 low)
-- ARGV[4] due: "0" now, "+N" N ms after Redis' TIME, "N" at epoch ms N  ARGV[5] record
-- ARGV[6] lock ttl ms  ARGV[7] "unique" or "debounce"
-- returns: {holder's id as JSON, code}: 1 stored (the new job holds the key), 0 a live job
--          holds it (nothing stored), 2 debounced (the pending holder took this record and
--          due time), or an error reply when the record does not start with its id
-- The lock is released lazily: a holder that completed, was cancelled (its record is gone)
-- or was dead-lettered no longer counts, so ack, fail, cancel and reap never touch it; a
-- crashed worker's job keeps it (its record stays) until it is re-run and finishes.
expect_type(KEYS[1], 'hash')
expect_type(KEYS[2], 'zset')
expect_type(KEYS[11], 'string')
local now = now_ms()
local head = '{"id":' .. ARGV[2]
local record = ARGV[5]
if string.sub(record, 1, #head) ~= head then
  return redis.error_reply('enqueue_unique: the record does not start with its id')
end
local due = due_at(ARGV[4], now)
local ttl = tonumber(ARGV[6])

local function schedule(id, at)
  local earliest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
  redis.call('ZADD', KEYS[2], at, id)
  lower_due(tonumber(ARGV[1]), KEYS[2], at)
  if earliest == nil or at < tonumber(earliest) then wake(KEYS[4]) end
end

local holder = redis.call('GET', KEYS[11])
if holder then
  local id = cjson.decode(holder)
  local old = redis.call('HGET', KEYS[1], id)
  if old and not redis.call('ZSCORE', KEYS[10], id) then
    if ARGV[7] ~= 'debounce' then return { holder, 0 } end
    local pending = redis.call('ZSCORE', KEYS[2], id)
    if not pending and not redis.call('ZSCORE', KEYS[9], id) then
      -- ready, not started: take it out of its queue (it was pushed at the tail)
      pending = redis.call('LREM', queue_key(6, priority_of(decode_record(old))), -1, id) > 0
    end
    if pending then
      redis.call('HSET', KEYS[1], id, '{"id":' .. holder .. string.sub(record, #head + 1))
      schedule(id, math.max(due, now))
      redis.call('SET', KEYS[11], holder, 'PX', ttl)
      return { holder, 2 }
    end
  end
end
local id = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], id, record)
if due > now then
  schedule(id, due)
else
  redis.call('RPUSH', queue_key(6, tonumber(ARGV[3])), id)
  wake(KEYS[3])
end
redis.call('SET', KEYS[11], ARGV[2], 'PX', ttl)
redis.call('HINCRBY', KEYS[5], 'enqueued', 1)
return { ARGV[2], 1 }

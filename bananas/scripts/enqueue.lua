#!lua
-- enqueue: store a batch of jobs of one routing key, once each (idempotent by job id)
-- KEYS[1] jobs  KEYS[2] scheduled  KEYS[3] wake  KEYS[4] schedwake  KEYS[5] stats
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low
-- KEYS[8+i] result key of the i-th job (a finished job whose result is kept is a duplicate)
-- KEYS[9+n] (when ARGV[1] names it) the due index of scheduled jobs (see the prelude)
-- (no allow-oom: under maxmemory a submit is refused before anything is written)
-- ARGV[1] the KEYS position of the due index of scheduled jobs (0: none, on Cluster), then per job: id, priority index
--   (1 high, 2 normal, 3 low), due: "0" now, "+N" N ms after Redis' TIME, "N" at epoch ms N, record
-- returns: array with 1 (stored) or 0 (duplicate) per job
-- Only what a batch needs is read: TIME, the scheduled set's type and its earliest due
-- time only when some job of it has a due time (a batch of ready jobs skips all three).
expect_type(KEYS[1], 'hash')
local n = (#ARGV - 1) / 4
local timed = false
for i = 0, n - 1 do
  if ARGV[4 + i * 4] ~= '0' then timed = true; break end
end
local now, earliest = 0, nil
if timed then
  expect_type(KEYS[2], 'zset')
  now = now_ms()
  earliest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
end
local out = {}
local ready, delayed = 0, 0
local wake_promoter = false
local soonest = nil  -- the earliest due time of this batch's delayed jobs
for i = 0, n - 1 do
  local b = 2 + i * 4
  local id = ARGV[b]
  -- a finished job whose result is kept is a duplicate; HSETNX stores only a new id
  if redis.call('EXISTS', KEYS[9 + i]) == 1 or redis.call('HSETNX', KEYS[1], id, ARGV[b + 3]) == 0 then
    out[i + 1] = 0
  else
    local due = due_at(ARGV[b + 2], now)
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      delayed = delayed + 1
      if soonest == nil or due < soonest then soonest = due end
      if earliest == nil or due < tonumber(earliest) then wake_promoter = true end
    else
      redis.call('RPUSH', queue_key(6, tonumber(ARGV[b + 1])), id)
      ready = ready + 1
    end
    out[i + 1] = 1
  end
end
if soonest then lower_due(tonumber(ARGV[1]), KEYS[2], soonest) end
enqueued(ready, delayed, wake_promoter)
return out

#!lua
-- enqueue_grouped: store a batch of jobs of one routing key that belong to groups, once each
-- (the jobs of no group go through enqueue.lua and never touch the flow keys)
-- KEYS[1] jobs  KEYS[2] scheduled  KEYS[3] wake  KEYS[4] schedwake  KEYS[5] stats
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low
-- KEYS[8+i] result key of the i-th job (a finished job whose result is kept is a duplicate)
-- KEYS[9+n] (when ARGV[1] names it) the due index of scheduled jobs (see the prelude)
-- then the flow keys (groups, limits, members, parked, grouped x3, scheduled, schedwake:
--   see the prelude)
-- (no allow-oom: under maxmemory a submit is refused before anything is written)
-- ARGV[1] the KEYS position of the due index of scheduled jobs (0: none, on Cluster), then per job: id, priority index, due ("0"
--   now, "+N" N ms after Redis' TIME, "N" at epoch ms N), group, record
-- returns: array with 1 (stored) or 0 (duplicate) per job
-- A ready job joins its group's waiting jobs (the group's token goes to its queue if it
-- is not out already); a delayed one waits in scheduled and joins its group when promoted.
expect_type(KEYS[1], 'hash')
expect_type(KEYS[2], 'zset')
local F = flow_keys()
expect_type(F.groups, 'hash')
local now = now_ms()
local out = {}
local ready, delayed = 0, 0
local earliest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
local wake_promoter = false
local soonest = nil  -- the earliest due time of this batch's delayed jobs
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local b = 2 + i * 5
  local id = ARGV[b]
  if redis.call('HEXISTS', KEYS[1], id) == 1 or redis.call('EXISTS', KEYS[9 + i]) == 1 then
    out[i + 1] = 0
  else
    redis.call('HSET', KEYS[1], id, ARGV[b + 4])
    local due = due_at(ARGV[b + 2], now)
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      delayed = delayed + 1
      if soonest == nil or due < soonest then soonest = due end
      if earliest == nil or due < tonumber(earliest) then wake_promoter = true end
    else
      local p = tonumber(ARGV[b + 1])
      push_grouped(F, queue_key(6, p), p, ARGV[b + 3], id, false)
      ready = ready + 1
    end
    out[i + 1] = 1
  end
end
if soonest then lower_due(tonumber(ARGV[1]), KEYS[2], soonest) end
enqueued(ready, delayed, wake_promoter)
return out

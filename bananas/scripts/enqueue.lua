#!lua
-- enqueue: store a batch of jobs of one routing key, once each (idempotent by job id)
-- KEYS[1] jobs  KEYS[2] scheduled  KEYS[3] wake  KEYS[4] schedwake  KEYS[5] stats
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low
-- KEYS[9] idle  KEYS[10] leases  KEYS[11] attempts  KEYS[12] paused
-- KEYS[12+i] result key of the i-th job (a finished job whose result is kept is a duplicate)
-- KEYS[13+n], KEYS[14+n] (when ARGV[1] names the first) the due indexes of scheduled jobs
--   and of leases (see the prelude)
-- (no allow-oom: under maxmemory a submit is refused before anything is written)
-- ARGV[1] the KEYS position of the due index of scheduled jobs (that of leases follows it;
--   0: none, on Cluster), then per job: id, priority index
--   (1 high, 2 normal, 3 low), due: "0" now, "+N" N ms after Redis' TIME, "N" at epoch ms N, record
-- returns: array with 1 (stored) or 0 (duplicate) per job
-- Only what a batch needs is read: TIME, the scheduled set's type and its earliest due
-- time only when some job of it has a due time (a batch of ready jobs skips all three).
-- Single hop (docs/architecture.md): when an idle worker is registered (KEYS[9], see the
-- prelude) and nothing is paused or name-limited (no KEYS[12]), a ready job is leased to
-- the registration that has waited longest among those serving its priority whose queues
-- are empty (so no job overtakes one queued before it): the lease bookkeeping of fetch.lua
-- (attempts, lease deadline of Redis' TIME, the fetch record, the route's entry in the due
-- index of leases lowered to that deadline) and the job pushed onto the
-- registration's hand-off list, which its worker blocks on; the registration is removed.
-- An expired registration is never handed a job. Its two keys are the only ones this
-- script names itself (handoff_keys in the prelude). It never wakes anyone: the worker's
-- blocking pop returns the job.
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
-- single hop: the unexpired idle registrations, looked at only when there are some
local idle = nil
if redis.call('ZCARD', KEYS[9]) > 0 and not redis.call('GET', KEYS[12]) then
  expect_type(KEYS[9], 'zset')
  expect_type(KEYS[10], 'zset')
  expect_type(KEYS[11], 'hash')
  if not timed then now = now_ms() end
  idle = redis.call('ZRANGEBYSCORE', KEYS[9], '(' .. now, '+inf', 'LIMIT', 0, 16)
end
local queued = nil  -- ready jobs per priority queue, read at the first hand-off try
local scheduled_at = tonumber(ARGV[1])  -- the due indexes' KEYS positions (0: none)
local leases_at = scheduled_at > 0 and scheduled_at + 1 or 0

-- Lease ready job id (priority index p) to an idle registration; false when none fits.
local function hand_off(id, p, record)
  if queued == nil then
    queued = {}
    for q = 1, 3 do queued[q] = redis.call('LLEN', queue_key(6, q)) end
  end
  for i, m in ipairs(idle) do
    local fetch_id, serve, lease = string.match(m, '^(.*):([01][01][01]):(%d+)$')
    local fits = fetch_id ~= nil and string.sub(serve, p, p) == '1'
    for q = 1, 3 do
      if fits and string.sub(serve, q, q) == '1' and queued[q] > 0 then fits = false end
    end
    if fits then
      if not valid_count(redis.call('HGET', KEYS[11], id)) then return false end
      table.remove(idle, i)
      redis.call('ZREM', KEYS[9], m)
      lease = tonumber(lease)
      local attempt = redis.call('HINCRBY', KEYS[11], id, 1)
      local record_key, handoff_key = handoff_keys(KEYS[9], fetch_id)
      record_leases(KEYS[10], record_key, { now + lease, id }, { id, attempt }, lease, leases_at)
      -- "<token> <characters in id> <id><record>" (characters, as the worker counts them)
      local chars = select(2, string.gsub(id, '[^\128-\191]', ''))
      redis.call('RPUSH', handoff_key, attempt .. ' ' .. chars .. ' ' .. id .. record)
      redis.call('PEXPIRE', handoff_key, lease)
      return true
    end
  end
  return false
end

local out = {}
local ready, delayed, handed = 0, 0, 0
local wake_promoter = false
local soonest = nil  -- the earliest due time of this batch's delayed jobs
for i = 0, n - 1 do
  local b = 2 + i * 4
  local id = ARGV[b]
  -- a finished job whose result is kept is a duplicate; HSETNX stores only a new id
  if redis.call('EXISTS', KEYS[13 + i]) == 1 or redis.call('HSETNX', KEYS[1], id, ARGV[b + 3]) == 0 then
    out[i + 1] = 0
  else
    local due = due_at(ARGV[b + 2], now)
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      delayed = delayed + 1
      if soonest == nil or due < soonest then soonest = due end
      if earliest == nil or due < tonumber(earliest) then wake_promoter = true end
    else
      local p = tonumber(ARGV[b + 1])
      if idle and #idle > 0 and hand_off(id, p, ARGV[b + 3]) then
        handed = handed + 1
      else
        redis.call('RPUSH', queue_key(6, p), id)
        ready = ready + 1
        if queued then queued[p] = queued[p] + 1 end
      end
    end
    out[i + 1] = 1
  end
end
if soonest then lower_due(scheduled_at, KEYS[2], soonest) end
enqueued(ready, delayed, wake_promoter, handed)
return out

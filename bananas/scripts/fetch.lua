#!lua
-- fetch: lease up to N ready jobs of one routing key to a worker, high before normal before low
-- (no allow-oom flag: under maxmemory a fetch is refused before it runs, so no job is
-- leased by a worker whose ack would need memory that is not there)
-- KEYS[1] queue:high  KEYS[2] queue:normal  KEYS[3] queue:low
-- KEYS[4] jobs  KEYS[5] leases  KEYS[6] attempts  KEYS[7] wake  KEYS[8] errors  KEYS[9] dead
-- KEYS[10] stats  KEYS[11] the record of this fetch id  KEYS[12] paused  KEYS[13] idle
-- KEYS[14] the record of the next fetch id (ARGV[8])
-- KEYS[15], KEYS[16] (when ARGV[9] and ARGV[10] name them) the due indexes of leases and
--   of scheduled jobs (see the prelude)
-- then the flow keys (groups, limits, members, parked, grouped x3, scheduled, schedwake:
--   see the prelude; KEYS[15..23] without the due indexes, KEYS[17..25] with them)
-- ARGV[1] lease ms  ARGV[2] max jobs
-- ARGV[3] the anti-starvation turn: "0" none; "1" first take one normal then one low job;
--         "2" first take one low then one normal job (so even one free slot serves each)
-- ARGV[4] which priorities to serve: three characters, "1" serve / "0" skip (high, normal, low)
-- ARGV[5] this fetch id (single hop; "" when ARGV[6] and ARGV[7] are "0")
-- ARGV[6] idle registration ms: when this fetch leases fewer jobs than ARGV[2], register a
--         fetch id as idle (see the prelude's single-hop block) for that long ("0": do not):
--         this fetch's own id when it leased nothing, else ARGV[8] (whose record is empty)
-- ARGV[7] "1" when a registration of this fetch id may be live: it is removed unless renewed
-- ARGV[8] the worker's next fetch id on this routing key ("" none)
-- ARGV[9], ARGV[10] the KEYS positions of the due indexes of leases and of scheduled jobs
--   (0: none, on Cluster)
-- returns: { flat array of job id, record, attempt (the lease token), ...;
--            ids dropped for having no record; flat array of dead-lettered id, reason;
--            the fetch id registered as idle now, or "" }
-- A re-sent fetch (its record is not empty) registers nothing: it removes the registration
-- of the next id that the first try may have made, and returns a job handed to it too.
-- The lease deadline is Redis' TIME plus the lease, taken when the script runs.
-- Idempotent by fetch id: a fetch whose reply was lost is re-sent with the same id and
-- gets the jobs the first one leased (those still leased with the same token), so no
-- job is stranded leased to nobody until its lease expires. A job a submit handed to this
-- fetch id's idle registration is in the same record: the worker gets it back the same way.
-- Paused priorities (KEYS[12], see pause.lua) are neither served nor counted for the baton.
-- A group token in a queue (see the prelude's flow block) leases its group's head job when
-- the group's limits allow, and goes back to the tail; a group at its concurrency limit
-- parks its token until a slot comes back, one over its rate waits in scheduled until the
-- rate allows (the promoter puts it back): neither costs an attempt or holds a slot.
-- When a job-name limit exists (the 4th character of KEYS[12]), a job of no group whose
-- name has a limit joins the group "name:<job name>" as it is popped (its record gains
-- that group), and its group's token serves it under that limit from then on.
-- Every field read is checked before the first write: a queue entry with no record is
-- dropped and counted ('orphaned'), an attempts counter that is not a whole number
-- dead-letters that job with the reason; the other jobs of the batch are leased.
-- A key with nothing queued (a dry key visited by a sweep over many keys) is answered
-- after the fetch-id check with 6 commands in all, before the other checks and the clock,
-- unless the fetch registers or renews an idle registration (single hop: ARGV[6], ARGV[7]).
expect_type(KEYS[11], 'list')

local out, orphans, bad = {}, {}, {}
local member = ARGV[5] ~= '' and idle_member(ARGV[5], ARGV[4], ARGV[1])
-- single hop: the idle key is looked at only when it is written (never by a fetch that
-- fills its count with no registration live: the busy worker's); one of the wrong type
-- is left alone, and nothing registers (the two-hop path still serves the worker)
local function idle_ok()
  local t = redis.call('TYPE', KEYS[13])['ok']
  return t == 'zset' or t == 'none'
end
local previous = redis.call('LRANGE', KEYS[11], 0, -1)
if #previous > 0 then
  expect_type(KEYS[4], 'hash')
  expect_type(KEYS[5], 'zset')
  expect_type(KEYS[6], 'hash')
  if ARGV[7] == '1' and idle_ok() then redis.call('ZREM', KEYS[13], member) end
  if ARGV[8] ~= '' and idle_ok() then
    redis.call('ZREM', KEYS[13], idle_member(ARGV[8], ARGV[4], ARGV[1]))
    for _, v in ipairs(redis.call('LRANGE', KEYS[14], 0, -1)) do previous[#previous + 1] = v end
  end
  for i = 1, #previous, 2 do
    local id, token = previous[i], previous[i + 1]
    if redis.call('ZSCORE', KEYS[5], id) and redis.call('HGET', KEYS[6], id) == token then
      local record = redis.call('HGET', KEYS[4], id)
      if record then
        out[#out + 1] = id
        out[#out + 1] = record
        out[#out + 1] = tonumber(token)
      end
    end
  end
  return { out, orphans, bad, '' }
end

local queued = 0
for i = 1, 3 do
  local n = redis.pcall('LLEN', KEYS[i])
  if type(n) ~= 'number' then queued = 1; break end  -- the wrong type: the checks name it
  queued = queued + n
end
-- (a fetch that may register or renew an idle registration goes on: single hop writes it)
if queued == 0 and ARGV[6] == '0' and ARGV[7] ~= '1' then return { out, orphans, bad, '' } end

for i = 1, 3 do expect_type(KEYS[i], 'list') end
expect_type(KEYS[4], 'hash')
expect_type(KEYS[5], 'zset')
expect_type(KEYS[6], 'hash')
expect_type(KEYS[8], 'hash')
expect_type(KEYS[9], 'zset')

local now = now_ms()
local deadline = now + tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local leased = {}
local taken = {}

-- Lease one job: count its delivery, put it in the reply, record its lease deadline and
-- remember it under this fetch id.
local function lease(id, record)
  local attempt = redis.call('HINCRBY', KEYS[6], id, 1)
  out[#out + 1] = id
  out[#out + 1] = record
  out[#out + 1] = attempt
  leased[#leased + 1] = deadline
  leased[#leased + 1] = id
  taken[#taken + 1] = id
  taken[#taken + 1] = attempt
end

-- Dead-letter a job whose delivery count is not a whole number, and report it.
local function dead_bad_count(id, count)
  local reason = 'bad job record: attempts counter ' .. string.format('%q', count) ..
                 ' is not a whole number'
  dead_letter(KEYS[9], KEYS[8], id, now, reason)
  bad[#bad + 1] = id
  bad[#bad + 1] = reason
end

-- flow: serve one group token; 1 when it leased a job, else 0 ------------------------------
local F = nil       -- the flow keys, looked up at the first token
local requeued = 0  -- tokens pushed back to the tail by this fetch (they may serve again)

local function lease_grouped(id, group, limit)
  local record = redis.call('HGET', KEYS[4], id)
  local count = redis.call('HGET', KEYS[6], id)
  if not record then
    orphans[#orphans + 1] = id
    return 0
  end
  if not valid_count(count) then
    dead_bad_count(id, count)
    return 0
  end
  if limit and limit.concurrency > 0 then
    redis.call('HINCRBY', F.groups, 'run:' .. group, 1)
    redis.call('HSET', F.groups, 'slot:' .. id, group)
  end
  lease(id, record)
  return 1
end

local function serve_token(queue, token)
  F = F or flow_keys()
  local p, group = token_parts(token)
  redis.call('HINCRBY', F.groups, 'tok:' .. p, -1)
  local member = group_head(F, p, group)
  if not member then
    redis.call('HDEL', F.groups, 'out:' .. p .. ':' .. group)
    return 0
  end
  local limit = limit_of(F, group)
  if limit and limit.concurrency > 0 and
     tonumber(redis.call('HGET', F.groups, 'run:' .. group) or '0') >= limit.concurrency then
    redis.call('HSET', F.parked, group, token)
    return 0
  end
  if limit and limit.interval > 0 then
    -- the rate: GCRA (a token bucket of limit.burst), tat = theoretical arrival time
    local tat = tonumber(redis.call('HGET', F.groups, 'tat:' .. group) or '0')
    local allowed_at = tat - limit.interval * (limit.burst - 1)
    if now < allowed_at then
      local at = math.ceil(allowed_at)
      local earliest = redis.call('ZRANGE', F.scheduled, 0, 0, 'WITHSCORES')[2]
      if redis.call('ZADD', F.scheduled, at, token) == 1 then
        redis.call('HINCRBY', F.groups, 'thr', 1)  -- tokens waiting in scheduled (stats)
      end
      lower_due(tonumber(ARGV[10]), F.scheduled, at)
      if earliest == nil or at < tonumber(earliest) then wake(F.schedwake) end
      return 0
    end
    redis.call('HSET', F.groups, 'tat:' .. group, math.max(tat, now) + limit.interval)
  end
  local got = lease_grouped(take_member(F, p, group, member), group, limit)
  if group_head(F, p, group) then
    queue_token(F, queue, token, false)
    requeued = requeued + 1
  else
    redis.call('HDEL', F.groups, 'out:' .. p .. ':' .. group)
  end
  return got
end
-- end flow -------------------------------------------------------------------------------

-- flow: a job of no group whose name has a limit becomes a job of the group "name:<it>"
local names_limited = false  -- set below from the flags, before any take
local function by_name(queue, p, id, record)
  local job = decode_record(record)
  local name = job['name']
  if type(name) ~= 'string' or type(job['group']) == 'string' or
     string.sub(record, -1) ~= '}' then
    return false
  end
  F = F or flow_keys()
  local group = 'name:' .. name
  if redis.call('HEXISTS', F.limits, group) == 0 then return false end
  redis.call('HSET', KEYS[4], id, string.sub(record, 1, -2) .. ',"group":' ..
             cjson.encode(group) .. '}')
  push_grouped(F, queue, p, group, id, false)
  requeued = requeued + 1
  return true
end

local function take(queue, count, p)
  local ids = redis.call('LRANGE', queue, 0, count - 1)
  if #ids == 0 then return 0 end
  local records = redis.call('HMGET', KEYS[4], unpack(ids))
  local attempts = redis.call('HMGET', KEYS[6], unpack(ids))
  redis.call('LTRIM', queue, #ids, -1)
  local idle = 0  -- flow: tokens that leased nothing
  for i, id in ipairs(ids) do
    local record = records[i]
    if not record and is_token(id) then
      idle = idle + 1 - serve_token(queue, id)
    elseif not record then
      orphans[#orphans + 1] = id
    elseif names_limited and by_name(queue, p, id, record) then
      idle = idle + 1
    elseif not valid_count(attempts[i]) then
      dead_bad_count(id, attempts[i])
    else
      lease(id, record)
    end
  end
  return #ids - idle
end

local serve = ARGV[4]
-- pause: one read; a routing key with nothing paused has no paused key
local paused = redis.call('GET', KEYS[12])
if paused then serve = unpaused(serve, paused) end
names_limited = paused and string.sub(paused, 4, 4) == '1'  -- flow: job-name limits exist
-- end pause
local turn = ({ ['1'] = { 2, 3 }, ['2'] = { 3, 2 } })[ARGV[3]] or {}
for _, p in ipairs(turn) do
  if want > 0 and string.sub(serve, p, p) == '1' then want = want - take(queue_key(1, p), 1, p) end
end
for p = 1, 3 do
  if want <= 0 then break end
  if string.sub(serve, p, p) == '1' then
    want = want - take(queue_key(1, p), want, p)
    -- flow: tokens this fetch pushed back may serve their groups again, in turn
    while want > 0 and requeued > 0 do
      requeued = 0
      want = want - take(queue_key(1, p), want, p)
    end
  end
end
if #leased > 0 then
  record_leases(KEYS[5], KEYS[11], leased, taken, tonumber(ARGV[1]), tonumber(ARGV[9]))
end
-- single hop: a fetch that leased fewer jobs than asked registers an id with an empty
-- record as idle (expired registrations go first)
local registered = ''
if ARGV[6] ~= '0' and #leased < tonumber(ARGV[2]) then
  if #leased == 0 then registered = ARGV[5] else registered = ARGV[8] end
end
local writable = (registered ~= '' or ARGV[7] == '1') and idle_ok()
if not writable then registered = '' end
if registered ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[13], '-inf', now)
  redis.call('ZADD', KEYS[13], now + tonumber(ARGV[6]), idle_member(registered, ARGV[4], ARGV[1]))
end
if writable and ARGV[7] == '1' and registered ~= ARGV[5] then
  redis.call('ZREM', KEYS[13], member)
end
if #orphans > 0 then redis.call('HINCRBY', KEYS[10], 'orphaned', #orphans) end
if #bad > 0 then redis.call('HINCRBY', KEYS[10], 'failed', #bad / 2) end
-- (the wake list is looked at first: when a token waits already, the queues are not counted)
if redis.call('LLEN', KEYS[7]) == 0 and ready_unpaused(1, paused) > 0 then
  redis.call('RPUSH', KEYS[7], 1)
end
return { out, orphans, bad, registered }

-- workflow_advance: record how one node ended and release the nodes that became ready
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state
-- KEYS[6] results  KEYS[7] errors  KEYS[8] notify
-- ARGV[1] node  ARGV[2] outcome: 'done' or 'dead'  ARGV[3] result JSON (done) or error text (dead)
-- ARGV[4] now ms  ARGV[5] notify ttl ms
-- returns: {status, count, then per ready task node: node, spec, parent count,
--           then per parent: result JSON ('' when it has none), error text ('' when none)}
--          status is the workflow's after this call; {'missing'} for an unknown workflow or node.
--
-- Idempotent: it runs BEFORE the node's job is acked, so a crash re-delivers the job and
-- the call is replayed. A node's outcome is recorded once; dependents' counters are
-- decremented only the first time; a replay returns the dependents that were released but
-- may not have been queued (state 'queued'), and queueing them again is a no-op (their
-- job ids are deterministic). A dead node whose dependents tolerate failure ('tol:') counts
-- as finished; any other dead node fails the workflow until the node is requeued from the
-- dead-letter queue and completes, which resumes it.
local node, outcome, value = ARGV[1], ARGV[2], ARGV[3]
local now, notify_ttl = ARGV[4], tonumber(ARGV[5])
local status = redis.call('HGET', KEYS[1], 'status')
local prev = redis.call('HGET', KEYS[5], node)
if not status or status == 'abandoned' or not prev then return {'missing'} end

local function split(csv)
  local out = {}
  for item in string.gmatch(csv or '', '[^,]+') do out[#out + 1] = item end
  return out
end

local function is_join(n) return redis.call('HEXISTS', KEYS[2], 'join:' .. n) == 1 end

local function expire_all(ttl)
  if ttl <= 0 then ttl = notify_ttl end
  for k = 1, 7 do redis.call('PEXPIRE', KEYS[k], ttl) end
end

local function finish(new_status, ttl_field)
  status = new_status
  redis.call('HSET', KEYS[1], 'status', new_status, 'finished', now)
  expire_all(tonumber(redis.call('HGET', KEYS[1], ttl_field)) or 0)
  redis.call('RPUSH', KEYS[8], 1)
  redis.call('PEXPIRE', KEYS[8], notify_ttl)
end

local ready = {}

-- Count one finished node toward its dependents; a join completes on the spot.
local function release(start)
  local stack = { start }
  while #stack > 0 do
    local x = table.remove(stack)
    for _, d in ipairs(split(redis.call('HGET', KEYS[2], 'next:' .. x))) do
      if redis.call('HINCRBY', KEYS[4], d, -1) == 0 then
        if is_join(d) then
          redis.call('HSET', KEYS[5], d, 'done')
          redis.call('HINCRBY', KEYS[1], 'remaining', -1)
          stack[#stack + 1] = d
        elseif status == 'cancelled' then
          redis.call('HSET', KEYS[5], d, 'cancelled')
        else
          redis.call('HSET', KEYS[5], d, 'queued')
          ready[#ready + 1] = d
        end
      end
    end
  end
end

-- A replay: the dependents released before (through completed joins) still to be queued.
local function released(start)
  local stack = { start }
  while #stack > 0 do
    local x = table.remove(stack)
    for _, d in ipairs(split(redis.call('HGET', KEYS[2], 'next:' .. x))) do
      local st = redis.call('HGET', KEYS[5], d)
      if is_join(d) then
        if st == 'done' then stack[#stack + 1] = d end
      elseif st == 'queued' and tonumber(redis.call('HGET', KEYS[4], d)) == 0 then
        ready[#ready + 1] = d
      end
    end
  end
end

-- Validate what the writes below rely on before the first of them: Redis keeps a
-- script's writes up to an error, and a half-recorded node would never release its
-- dependents on a replay.
local function counter(key, field)
  local v = redis.call('HGET', key, field)
  if not v or not string.match(v, '^%-?%d+$') then
    return nil
  end
  return v
end
if not counter(KEYS[1], 'remaining') or not counter(KEYS[1], 'failed') then
  return redis.error_reply('ERR workflow_advance: corrupt counters in ' .. KEYS[1])
end
for _, d in ipairs(split(redis.call('HGET', KEYS[2], 'next:' .. node))) do
  if not counter(KEYS[4], d) then
    return redis.error_reply('ERR workflow_advance: no pending count for node ' .. d)
  end
end

local tolerated = redis.call('HGET', KEYS[2], 'tol:' .. node) == '1'
if outcome == 'done' then
  if prev == 'done' then
    released(node)
  else
    redis.call('HSET', KEYS[5], node, 'done')
    redis.call('HSET', KEYS[6], node, value)
    redis.call('HDEL', KEYS[7], node)
    if prev == 'dead' and not tolerated then
      -- resumed from the dead-letter queue
      if redis.call('HINCRBY', KEYS[1], 'failed', -1) <= 0 and status == 'failed' then
        status = 'running'
        redis.call('HSET', KEYS[1], 'status', 'running')
        redis.call('HDEL', KEYS[1], 'error', 'failed_node', 'finished')
        for k = 1, 7 do redis.call('PERSIST', KEYS[k]) end
        redis.call('DEL', KEYS[8])  -- the failure's token would wake waiters of the resumed run
      end
    end
    if prev == 'dead' and tolerated then
      released(node)
    else
      redis.call('HINCRBY', KEYS[1], 'remaining', -1)
      release(node)
    end
  end
elseif outcome == 'dead' then
  if prev == 'done' or prev == 'dead' then
    released(node)
  else
    redis.call('HSET', KEYS[5], node, 'dead')
    redis.call('HSET', KEYS[7], node, value)
    if tolerated then
      redis.call('HINCRBY', KEYS[1], 'remaining', -1)
      release(node)
    else
      redis.call('HINCRBY', KEYS[1], 'failed', 1)
      if status == 'running' then
        redis.call('HSET', KEYS[1], 'error', value, 'failed_node', node)
        finish('failed', 'failure_ttl')
      end
    end
  end
else
  return redis.error_reply('ERR workflow_advance: outcome must be done or dead')
end

if status == 'running' and tonumber(redis.call('HGET', KEYS[1], 'remaining')) <= 0 then
  finish('completed', 'success_ttl')
end
if status == 'cancelled' then return { status, 0 } end

-- The parents whose results a released node receives: its deps, or, when its one
-- dependency is a join, the join's deps (a join is only ever a node's sole dependency).
local function parents_of(d)
  local deps = split(redis.call('HGET', KEYS[2], 'deps:' .. d))
  if #deps == 1 and is_join(deps[1]) then
    return split(redis.call('HGET', KEYS[2], 'deps:' .. deps[1]))
  end
  return deps
end

-- HMGET in slices (a chord callback may have 100,000 parents), false -> ''.
local function hmget_all(key, fields)
  local values = {}
  local step = 2000
  for s = 1, #fields, step do
    local got = redis.call('HMGET', key, unpack(fields, s, math.min(s + step - 1, #fields)))
    for i = 1, #got do values[#values + 1] = got[i] or '' end
  end
  return values
end

local out = { status, #ready }
local any_errors = redis.call('HLEN', KEYS[7]) > 0
for _, d in ipairs(ready) do
  out[#out + 1] = d
  out[#out + 1] = redis.call('HGET', KEYS[3], d) or ''
  local parents = parents_of(d)
  local results = hmget_all(KEYS[6], parents)
  local errors = any_errors and hmget_all(KEYS[7], parents) or {}
  out[#out + 1] = #parents
  for i = 1, #parents do
    out[#out + 1] = results[i]
    out[#out + 1] = errors[i] or ''
  end
end
return out

-- _prelude: procedures the scripts share, prepended to every script when it is loaded
-- (bananas.ops.Script); not a script of its own. Each takes the keys it touches as
-- arguments, so every key still arrives in the calling script's KEYS.
--
-- The one priority convention: a priority is its index, 1 high, 2 normal, 3 low; the
-- three queue keys of a routing key are passed in that order, starting at KEYS[first].

local PRIORITY_INDEX = { high = 1, normal = 2, low = 3 }
local NORMAL = 2

-- One clock: Redis' own. Every deadline and due time a script compares or stores is
-- taken here, never from the host that sent the script (whose clock may be off).
-- TIME is allowed in scripts with effects replication (the only mode of Redis 7).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Refuse to touch a key of the wrong type, before any write: a clear error naming the
-- key, instead of WRONGTYPE half-way through (which would leave earlier writes done).
local function expect_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    error({ err = 'BADKEY bananas key ' .. key .. ' holds a ' .. t .. ' where a ' .. want ..
                  ' belongs (wrong type); nothing was changed' })
  end
end

-- Whether a stored attempts counter is usable: absent, or a whole number.
local function valid_count(value)
  return value == false or value == nil or string.match(value, '^%-?%d+$') ~= nil
end

-- The job record decoded to a table; an empty table when it is not a JSON object.
local function decode_record(record)
  local ok, job = pcall(cjson.decode, record)
  if ok and type(job) == 'table' then return job end
  return {}
end

-- The priority index of a decoded job record; normal when it names none we know.
local function priority_of(job)
  return PRIORITY_INDEX[job['priority']] or NORMAL
end

-- The queue key of priority index p, the queues being KEYS[first .. first + 2].
local function queue_key(first, p)
  return KEYS[first + p - 1]
end

-- Leave one wake-up token on a wake list unless one is already waiting there.
local function wake(wake_key)
  if redis.call('LLEN', wake_key) == 0 then redis.call('RPUSH', wake_key, 1) end
end

-- The due indexes (bananas/keys.py: bananas:due:leases, bananas:due:scheduled): member a
-- route's leases or scheduled key, score never later than that set's earliest score. A
-- script that adds time `at` to such a set lowers the set's entry in the index at
-- KEYS[pos] (ZADD LT: here an entry is only ever added or lowered, never raised, so a
-- later earliest elsewhere can't hide this one). pos 0: no index (Redis Cluster).
local function lower_due(pos, set_key, at)
  if pos > 0 then redis.call('ZADD', KEYS[pos], 'LT', at, set_key) end
end

-- Set set_key's entry in the due index index_key to the set's earliest score, or remove it
-- when the set is empty (the one place an entry is raised: it reads the set it indexes, in
-- the same script). Returns that earliest score, or nil.
local function settle_due(index_key, set_key)
  local earliest = redis.call('ZRANGE', set_key, 0, 0, 'WITHSCORES')[2]
  if earliest then
    redis.call('ZADD', index_key, earliest, set_key)
    return tonumber(earliest)
  end
  redis.call('ZREM', index_key, set_key)
  return nil
end

-- The epoch ms a submit's due field names: "0" now, "+N" N ms after now, "N" at epoch ms N.
local function due_at(due_text, now)
  if string.sub(due_text, 1, 1) == '+' then return now + tonumber(string.sub(due_text, 2)) end
  return tonumber(due_text)
end

-- The end of an enqueue of ready and delayed jobs (the enqueue scripts' KEYS[3] wake,
-- KEYS[4] schedwake, KEYS[5] stats): wake a fetcher, a promoter, count them (with the
-- jobs handed straight to idle workers, which wake nobody and are counted as handed too).
local function enqueued(ready, delayed, wake_promoter, handed)
  if ready > 0 then wake(KEYS[3]) end
  if wake_promoter then wake(KEYS[4]) end
  handed = handed or 0
  local n = ready + delayed + handed
  if n > 0 then redis.call('HINCRBY', KEYS[5], 'enqueued', n) end
  if handed > 0 then redis.call('HINCRBY', KEYS[5], 'handed', handed) end
end

-- Store a job's result with its record (when ttl ms > 0), then notify its waiters.
local function write_result(result_key, notify_key, result, record, ttl, notify_ttl)
  if ttl > 0 then
    redis.call('HSET', result_key, 'result', result, 'job', record)
    redis.call('PEXPIRE', result_key, ttl)
  end
  redis.call('RPUSH', notify_key, 1)
  redis.call('PEXPIRE', notify_key, notify_ttl)
end

-- Move job id to the dead-letter queue at now ms, with reason as its last error.
local function dead_letter(dead_key, errors_key, id, now, reason)
  redis.call('HSET', errors_key, id, reason)
  redis.call('ZADD', dead_key, now, id)
end


-- Record the leases of jobs just leased: deadlines (flat deadline, id, ... as ZADD takes
-- them) in the leases ZSET, and taken (flat id, token, ...) under the fetch record
-- record_key for lease_ms, so that the same fetch id gets them back (a fetch re-sent after
-- a lost reply, a worker draining a hand-off). The one place a lease is written: fetch and
-- enqueue (a job handed straight to an idle worker) both call it. It lowers the route's
-- entry in the due index of leases at KEYS[due_pos] to the earliest of these deadlines
-- (due_pos 0: no index, on Redis Cluster), so a handed job's lease is indexed like a
-- fetched one's.
local function record_leases(leases_key, record_key, deadlines, taken, lease_ms, due_pos)
  redis.call('ZADD', leases_key, unpack(deadlines))
  local earliest = deadlines[1]
  for i = 3, #deadlines, 2 do
    if deadlines[i] < earliest then earliest = deadlines[i] end
  end
  lower_due(due_pos, leases_key, earliest)
  redis.call('RPUSH', record_key, unpack(taken))
  redis.call('PEXPIRE', record_key, lease_ms)
end

-- == single hop: idle registrations (docs/architecture.md, "Single-hop wake-up") ==========
-- An idle worker's empty fetch registers its fetch id in the routing key's idle ZSET as
-- "<fetch id>:<serve mask>:<lease ms>", scored by a deadline of Redis' clock; a submit of
-- a ready job leases it to an unexpired registration (removing it) and pushes it onto that
-- registration's hand-off list, which the worker blocks on.
local function idle_member(fetch_id, serve, lease_ms)
  return fetch_id .. ':' .. serve .. ':' .. lease_ms
end

-- The fetch record and the hand-off list of registration fetch_id, named from the idle key
-- (route:{r}:idle -> route:{r}:fetch:<f> and route:{r}:handoff:<f>, as bananas.keys builds
-- them): the only keys a script names itself, since which worker a submit goes to is only
-- known inside the script. They share the idle key's hash tag, so its Cluster slot.
local function handoff_keys(idle_key, fetch_id)
  local base = string.sub(idle_key, 1, -6)
  return base .. ':fetch:' .. fetch_id, base .. ':handoff:' .. fetch_id
end
-- == end single hop ==========================================================================


-- pause (issue 16): a paused mask has three characters, "1" paused (high, normal, low).

-- A serve mask ("1" serve / "0" skip, high, normal, low) without the paused priorities.
local function unpaused(serve, paused)
  local out = ''
  for p = 1, 3 do
    if string.sub(paused, p, p) == '1' then out = out .. '0' else out = out .. string.sub(serve, p, p) end
  end
  return out
end

-- Ready jobs in the queues KEYS[first .. first + 2] whose priority is not paused
-- (paused: the mask, or false/nil when nothing is paused).
local function ready_unpaused(first, paused)
  local n = 0
  for p = 1, 3 do
    if not paused or string.sub(paused, p, p) ~= '1' then n = n + redis.call('LLEN', queue_key(first, p)) end
  end
  return n
end

-- == flow: groups, fair share and limits (issue 16) ======================================
-- A job submitted with a group never enters its priority queue itself. It waits in the
-- routing key's grouped:<priority> sorted set (every score 0, so members sort by bytes) as
--   group .. "\0" .. order (16 characters) .. "\0" .. id
-- and the priority queue holds one *group token*, "\1" .. priority index .. group, while the
-- group has ready jobs. A fetch pops tokens with the ids around them; for a token it leases
-- the group's head job and pushes the token back to the tail: round robin between groups,
-- with the jobs of no group as turns of their own. Jobs without a group never meet any of
-- this. The groups hash holds: seq (order counter), out:<p>:<group> (the token is out:
-- queued, parked or throttled), tok:<p> (tokens queued), run:<group> (jobs holding a
-- concurrency slot), slot:<id> (the group a leased job holds a slot of), tat:<group> (the
-- rate limit's theoretical arrival time, ms), thr (tokens waiting in scheduled for their
-- rate). The members hash: id -> a waiting job's
-- member. The parked hash: group -> its token, parked at the concurrency limit. The limits
-- hash: key -> "interval ms|burst|concurrency" (0: none); its field "*" lists the patterns
-- ("tenant:*"), longest first, one a line. A job-name limit is the key "name:<job name>":
-- fetch moves a job of no group with such a name into the group of that name.
--
-- The flow keys come last in KEYS, in this order (flow_keys finds them): groups, limits,
-- members, parked, grouped:high, grouped:normal, grouped:low, scheduled, schedwake.

local GROUP_TOKEN = 1  -- the first byte of a group token

local function flow_keys()
  local f = #KEYS - 8
  return { groups = KEYS[f], limits = KEYS[f + 1], members = KEYS[f + 2], parked = KEYS[f + 3],
           grouped = { KEYS[f + 4], KEYS[f + 5], KEYS[f + 6] },
           scheduled = KEYS[f + 7], schedwake = KEYS[f + 8] }
end

local function is_token(id)
  return string.byte(id, 1) == GROUP_TOKEN
end

local function token_of(p, group)
  return string.char(GROUP_TOKEN) .. p .. group
end

-- The priority index and group a token names.
local function token_parts(token)
  return tonumber(string.sub(token, 2, 2)), string.sub(token, 3)
end

-- Put a token in queue (the queue of its priority), counted.
local function queue_token(F, queue, token, at_head)
  redis.call(at_head and 'LPUSH' or 'RPUSH', queue, token)
  redis.call('HINCRBY', F.groups, 'tok:' .. string.sub(token, 2, 2), 1)
end

-- Add a ready job to its group (the tail, or the head for a job handed back) and make
-- sure the group's token is out; queue is the queue of priority index p.
local function push_grouped(F, queue, p, group, id, at_head)
  local seq = redis.call('HINCRBY', F.groups, 'seq', 1)
  local order
  if at_head then order = '0' .. string.format('%015d', 999999999999999 - seq)
  else order = '1' .. string.format('%015d', seq) end
  local member = group .. '\0' .. order .. '\0' .. id
  redis.call('ZADD', F.grouped[p], 0, member)
  redis.call('HSET', F.members, id, member)
  if redis.call('HSETNX', F.groups, 'out:' .. p .. ':' .. group, 1) == 1 then
    queue_token(F, queue, token_of(p, group), at_head)
  end
end

-- Put a job that waits no more at the tail of its priority's list (the queues from
-- KEYS[first_queue], see queue_key); a job of a group joins its group instead.
local function push_ready(id, record, first_queue)
  local job = decode_record(record)
  local p = priority_of(job)
  if type(job['group']) == 'string' then  -- flow
    push_grouped(flow_keys(), queue_key(first_queue, p), p, job['group'], id, false)
  else
    redis.call('RPUSH', queue_key(first_queue, p), id)
  end
end

-- The member of a group's head job, or nil when the group has no ready job.
local function group_head(F, p, group)
  return redis.call('ZRANGEBYLEX', F.grouped[p], '[' .. group .. '\0', '[' .. group .. '\1',
                    'LIMIT', 0, 1)[1]
end

-- Take a member out of its grouped set; returns its job id.
local function take_member(F, p, group, member)
  redis.call('ZREM', F.grouped[p], member)
  local id = string.sub(member, #group + 19)
  redis.call('HDEL', F.members, id)
  return id
end

-- Remove a waiting grouped job (cancel); true when it was waiting in its group.
local function remove_grouped(F, p, id)
  local member = redis.call('HGET', F.members, id)
  if not member then return false end
  redis.call('ZREM', F.grouped[p], member)
  redis.call('HDEL', F.members, id)
  return true
end

-- The limit of a group: interval ms (0: no rate), burst, concurrency (0: none), or nil.
-- An exact key wins over a pattern; of the patterns, the longest matching one.
local function limit_of(F, group)
  local spec = redis.call('HGET', F.limits, group)
  if not spec then
    local patterns = redis.call('HGET', F.limits, '*')
    if not patterns then return nil end
    for pattern in string.gmatch(patterns, '[^\n]+') do
      local stem = string.sub(pattern, 1, -2)
      if string.sub(group, 1, #stem) == stem then
        spec = redis.call('HGET', F.limits, pattern)
        break
      end
    end
    if not spec then return nil end
  end
  local interval, burst, concurrency = string.match(spec, '^([%d.]+)|(%d+)|(%d+)$')
  if not interval then return nil end
  return { interval = tonumber(interval), burst = tonumber(burst),
           concurrency = tonumber(concurrency) }
end

-- Give back the concurrency slot leased job id holds, if any; a token parked at the limit
-- goes back to the tail of its queue (queues: KEYS[first .. first + 2]). True when a
-- token went back (the caller wakes a worker).
local function return_slot(F, first, id)
  local group = redis.call('HGET', F.groups, 'slot:' .. id)
  if not group then return false end
  redis.call('HDEL', F.groups, 'slot:' .. id)
  if redis.call('HINCRBY', F.groups, 'run:' .. group, -1) <= 0 then
    redis.call('HDEL', F.groups, 'run:' .. group)
  end
  local token = redis.call('HGET', F.parked, group)
  if not token then return false end
  redis.call('HDEL', F.parked, group)
  queue_token(F, queue_key(first, token_parts(token)), token, false)
  return true
end
-- == end flow ==============================================================================

-- flow: scripts that give back concurrency slots (ack, fail, release) take the wake list
-- and the three queues just before the flow keys, when a job of a group is in the batch.
local function flow_wake()
  return KEYS[#KEYS - 12]
end

local function flow_queues()
  return #KEYS - 11
end

-- Add n to one outcome counter of a minute: field "<epoch minute>:<kind>" (c completed,
-- f failed, r retried) of the routing key's throughput hash of that hour, kept ttl ms
-- after its last write. Two commands per script call, whatever the batch size.
local function count_outcome(key, field, n, ttl)
  redis.call('HINCRBY', key, field, n)
  redis.call('PEXPIRE', key, ttl)
end

-- Index completed job ids by Redis' clock in the ZSET key, keeping the newest cap.
local function index_completed(key, ids, cap)
  local now = now_ms()
  local args = {}
  for i = 1, #ids do
    args[2 * i - 1] = now
    args[2 * i] = ids[i]
  end
  redis.call('ZADD', key, unpack(args))
  redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1)
end

-- Add a batch's queue-wait and run-time bucket counts to its minute's and its hour's
-- histograms (bananas/timings.py). spec: "<field> <count> ..." ('' for none), each field
-- filed as "<minute>:<field>" in minutes_key and "<hour>:<field>" in hours_key, kept
-- minutes_ttl / hours_ttl ms after their last write. One HINCRBY per distinct field and
-- resolution, whatever the batch size.
local function count_timings(minutes_key, hours_key, minute, spec, minutes_ttl, hours_ttl)
  if spec == '' then return end
  local hour = tostring(math.floor(tonumber(minute) / 60))
  local name = nil
  for word in string.gmatch(spec, '%S+') do
    if name == nil then
      name = word
    else
      local n = tonumber(word)
      redis.call('HINCRBY', minutes_key, minute .. ':' .. name, n)
      redis.call('HINCRBY', hours_key, hour .. ':' .. name, n)
      name = nil
    end
  end
  redis.call('PEXPIRE', minutes_key, minutes_ttl)
  redis.call('PEXPIRE', hours_key, hours_ttl)
end

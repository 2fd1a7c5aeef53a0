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

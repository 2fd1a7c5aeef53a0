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

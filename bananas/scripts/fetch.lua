-- fetch: lease up to N ready jobs of one routing key to a worker, high before normal before low
-- KEYS[1] queue:high  KEYS[2] queue:normal  KEYS[3] queue:low
-- KEYS[4] jobs  KEYS[5] leases  KEYS[6] attempts  KEYS[7] wake  KEYS[8] paused
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max jobs
-- ARGV[4] the anti-starvation turn: "0" none; "1" first take one normal then one low job;
--         "2" first take one low then one normal job (so even one free slot serves each)
-- ARGV[5] which priorities to serve: three characters, "1" serve / "0" skip (high, normal, low)
-- returns: flat array of job id, record, attempt (the lease token), ...
-- An id whose record is gone (cancelled meanwhile) is dropped. If ready jobs remain
-- after the fetch, a wake token is left so another idle worker wakes up (baton passing).
-- Paused priorities (KEYS[8], see pause.lua) are neither served nor counted for the baton.
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local out = {}
local leased = {}

local function take(queue, count)
  local ids = redis.call('LPOP', queue, count)
  if not ids then return 0 end
  local records = redis.call('HMGET', KEYS[4], unpack(ids))
  for i, id in ipairs(ids) do
    local record = records[i]
    if record then
      out[#out + 1] = id
      out[#out + 1] = record
      out[#out + 1] = redis.call('HINCRBY', KEYS[6], id, 1)
      leased[#leased + 1] = deadline
      leased[#leased + 1] = id
    end
  end
  return #ids
end

local serve = ARGV[5]
-- pause: one read; a routing key with nothing paused has no paused key
local paused = redis.call('GET', KEYS[8])
if paused then serve = unpaused(serve, paused) end
-- end pause
local turn = ({ ['1'] = { 2, 3 }, ['2'] = { 3, 2 } })[ARGV[4]] or {}
for _, p in ipairs(turn) do
  if want > 0 and string.sub(serve, p, p) == '1' then want = want - take(queue_key(1, p), 1) end
end
for p = 1, 3 do
  if want <= 0 then break end
  if string.sub(serve, p, p) == '1' then want = want - take(queue_key(1, p), want) end
end
if #leased > 0 then redis.call('ZADD', KEYS[5], unpack(leased)) end
-- (the wake list is looked at first: when a token waits already, the queues are not counted)
if redis.call('LLEN', KEYS[7]) == 0 and ready_unpaused(1, paused) > 0 then
  redis.call('RPUSH', KEYS[7], 1)
end
return out

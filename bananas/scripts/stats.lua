-- stats: one routing key's queue sizes, O(1) per key but the due count (read-only)
-- KEYS[1] queue:high  KEYS[2] queue:normal  KEYS[3] queue:low
-- KEYS[4] scheduled  KEYS[5] leases  KEYS[6] dead  KEYS[7] jobs
-- ARGV[1] window ms (optional, default 0): count scheduled jobs due within it from now
-- returns: {high, normal, low, scheduled, in flight, dead, head record of each non-empty
--           queue (false when empty) x3, scheduled jobs due by now + window (Redis TIME)}
local out = {}
for q = 1, 3 do out[q] = redis.call('LLEN', KEYS[q]) end
out[4] = redis.call('ZCARD', KEYS[4])
out[5] = redis.call('ZCARD', KEYS[5])
out[6] = redis.call('ZCARD', KEYS[6])
for q = 1, 3 do
  local head = redis.call('LINDEX', KEYS[q], 0)
  out[6 + q] = head and redis.call('HGET', KEYS[7], head) or false
end
local window = tonumber(ARGV[1] or '0') or 0
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
out[10] = redis.call('ZCOUNT', KEYS[4], '-inf', now_ms + window)
return out

-- stats: one routing key's queue sizes, O(1) per key but the due count (read-only)
-- KEYS[1] queue:high  KEYS[2] queue:normal  KEYS[3] queue:low
-- KEYS[4] scheduled  KEYS[5] leases  KEYS[6] dead  KEYS[7] jobs  KEYS[8] paused
-- KEYS[9] groups  KEYS[10] grouped:high  KEYS[11] grouped:normal  KEYS[12] grouped:low
-- (a queue's depth counts the ready jobs of groups, not the group tokens in its list, and
-- scheduled does not count the tokens of groups waiting for their rate)
-- ARGV[1] window ms (optional, default 0): count scheduled jobs due within it from now
-- returns: {high, normal, low, scheduled, in flight, dead, head record of each non-empty
--           queue (false when empty) x3, scheduled jobs due by now + window (Redis TIME;
--           a group token due for its rate counts: a group's job becomes ready then),
--           paused mask ("000": nothing paused)}
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
out[11] = redis.call('GET', KEYS[8]) or '000'
-- flow: group tokens stand for the ready jobs of their groups
local tokens = redis.call('HMGET', KEYS[9], 'tok:1', 'tok:2', 'tok:3', 'thr')
for q = 1, 3 do
  out[q] = out[q] - tonumber(tokens[q] or '0') + redis.call('ZCARD', KEYS[9 + q])
end
out[4] = out[4] - tonumber(tokens[4] or '0')  -- throttled group tokens are no jobs
return out

#!lua flags=allow-oom
-- pause: pause or resume priorities of one routing key (fetch.lua skips paused queues)
-- KEYS[1] paused  KEYS[2] wake
-- ARGV[1] the priorities to change: three characters, "1" change / "0" keep (high, normal, low)
-- ARGV[2] "1" pause them, "0" resume them
-- returns: the paused mask now ("000" when nothing is paused)
-- The key also carries the flow flag set_limit.lua keeps as its 4th character ("1": a
-- job-name limit exists); it is kept, and the key is deleted when neither is set.
-- (allow-oom: pausing and resuming stay possible under maxmemory; the key is 3 bytes)
-- A resume leaves a wake token, so idle workers fetch the waiting backlog at once.
local old = redis.call('GET', KEYS[1]) or '000'
local new = ''
for p = 1, 3 do
  local c = string.sub(old, p, p)
  if string.sub(ARGV[1], p, p) == '1' then c = ARGV[2] end
  if c ~= '1' then c = '0' end
  new = new .. c
end
local names = string.sub(old, 4, 4) == '1'
if new == '000' and not names then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], new .. (names and '1' or '')) end
if ARGV[2] == '0' then wake(KEYS[2]) end
return new

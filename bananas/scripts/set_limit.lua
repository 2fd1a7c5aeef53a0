#!lua flags=allow-oom
-- set_limit: store, change or remove the limit of a group or a group pattern of one routing key
-- KEYS[1] wake  KEYS[2] queue:high  KEYS[3] queue:normal  KEYS[4] queue:low
-- KEYS[5] paused (its 4th character: "1" while a job-name limit exists, for fetch.lua)
-- then the flow keys (groups, limits, members, parked, grouped x3, scheduled, schedwake:
--   see the prelude)
-- ARGV[1] limit key: a group, a pattern ending in "*" ("tenant:*"), or "name:<job name>"
-- ARGV[2] "interval ms|burst|concurrency" (0: none), or "" to remove the limit
-- (allow-oom: a limit is a few bytes, and lifting one lets work drain)
-- returns: the number of parked tokens put back in their queues
-- Every parked token goes back (a fetch parks it again while its group is still at its
-- limit), so a raised or removed concurrency limit takes effect at once; jobs running keep
-- their slots, and a lowered limit lets no new job start until they are under it.
local F = flow_keys()
expect_type(F.limits, 'hash')
expect_type(F.parked, 'hash')
local key, spec = ARGV[1], ARGV[2]
if spec ~= '' and not string.match(spec, '^[%d.]+|%d+|%d+$') then
  return redis.error_reply('set_limit: bad limit ' .. spec)
end
if spec == '' then redis.call('HDEL', F.limits, key) else redis.call('HSET', F.limits, key, spec) end
if string.sub(key, -1) == '*' then
  local patterns = {}
  for pattern in string.gmatch(redis.call('HGET', F.limits, '*') or '', '[^\n]+') do
    if pattern ~= key then patterns[#patterns + 1] = pattern end
  end
  if spec ~= '' then patterns[#patterns + 1] = key end
  table.sort(patterns, function(a, b) return #a > #b or (#a == #b and a < b) end)
  if #patterns == 0 then redis.call('HDEL', F.limits, '*')
  else redis.call('HSET', F.limits, '*', table.concat(patterns, '\n')) end
end
if string.sub(key, 1, 5) == 'name:' then
  -- the flag fetch.lua reads with the pause mask: does any job-name limit exist?
  local names = false
  for _, field in ipairs(redis.call('HKEYS', F.limits)) do
    if string.sub(field, 1, 5) == 'name:' then names = true break end
  end
  local flags = redis.call('GET', KEYS[5]) or '000'
  local mask = string.sub(flags .. '000', 1, 3)
  if mask == '000' and not names then redis.call('DEL', KEYS[5])
  else redis.call('SET', KEYS[5], mask .. (names and '1' or '0')) end
end
local parked = redis.call('HGETALL', F.parked)
for i = 2, #parked, 2 do
  local token = parked[i]
  queue_token(F, queue_key(2, token_parts(token)), token, false)
end
if #parked > 0 then
  redis.call('DEL', F.parked)
  wake(KEYS[1])
end
return #parked / 2

#!lua
-- promote: move due delayed jobs and retries of one routing key to the tail of their queue
-- KEYS[1] scheduled  KEYS[2] jobs  KEYS[3] wake
-- KEYS[4] queue:high  KEYS[5] queue:normal  KEYS[6] queue:low
-- KEYS[7] (when ARGV[2] is 7) the due index of scheduled jobs: this route's entry is set
--   to its next due time, or removed (see the prelude)
-- then the flow keys (groups, limits, members, parked, grouped x3, scheduled, schedwake:
--   see the prelude)
-- A due job of a group joins its group; a due group token (a group the rate held back)
-- goes back to the tail of its queue.
-- (no allow-oom: promoting is refused under maxmemory, the jobs wait where they are)
-- ARGV[1] max jobs to move  ARGV[2] the KEYS position of the due index (0: none, on Cluster)
-- returns: {jobs moved, ms from now until the next scheduled job is due (0 if due), or -1}
expect_type(KEYS[1], 'zset')
expect_type(KEYS[2], 'hash')
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
if #ids > 0 then
  local records = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    local record = records[i]
    if record then
      push_ready(id, record, 4)
      moved = moved + 1
    elseif is_token(id) then  -- flow
      local F = flow_keys()
      queue_token(F, queue_key(4, token_parts(id)), id, false)
      redis.call('HINCRBY', F.groups, 'thr', -1)
      moved = moved + 1
    end
  end
  redis.call('ZREM', KEYS[1], unpack(ids))
  if moved > 0 then wake(KEYS[3]) end
end
local next_due
if tonumber(ARGV[2]) > 0 then
  next_due = settle_due(KEYS[tonumber(ARGV[2])], KEYS[1])
else
  next_due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
end
if not next_due then return { moved, -1 } end
return { moved, math.max(0, tonumber(next_due) - now) }

-- promote: move due delayed jobs and retries of one routing key to the tail of their queue
-- KEYS[1] scheduled  KEYS[2] jobs  KEYS[3] wake
-- KEYS[4] queue:high  KEYS[5] queue:normal  KEYS[6] queue:low
-- ARGV[1] now ms  ARGV[2] max jobs to move
-- returns: {jobs moved, due ms of the next scheduled job or -1}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
if #ids > 0 then
  local records = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    local record = records[i]
    if record then
      redis.call('RPUSH', queue_key(4, priority_of(decode_record(record))), id)
      moved = moved + 1
    end
  end
  redis.call('ZREM', KEYS[1], unpack(ids))
  if moved > 0 then wake(KEYS[3]) end
end
local next_due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return { moved, tonumber(next_due or '-1') }

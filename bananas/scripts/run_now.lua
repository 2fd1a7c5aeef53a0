-- run_now: move scheduled jobs (delays, retries in backoff) to the tail of their queue now
-- KEYS[1] scheduled  KEYS[2] jobs  KEYS[3] wake
-- KEYS[4] queue:high  KEYS[5] queue:normal  KEYS[6] queue:low
-- KEYS[7..15] the flow keys (see the prelude): a job of a group joins its group, as promote
-- ARGV: job ids
-- returns: the number of jobs moved (ids that were not scheduled are skipped)
local moved = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local record = redis.call('HGET', KEYS[2], id)
  if record and redis.call('ZREM', KEYS[1], id) == 1 then
    push_ready(id, record, 4)
    moved = moved + 1
  end
end
if moved > 0 then wake(KEYS[3]) end
return moved

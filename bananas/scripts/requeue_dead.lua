-- requeue_dead: move dead-lettered jobs back to the tail of their queue with a fresh retry budget
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors  KEYS[5] wake
-- KEYS[6] queue:high  KEYS[7] queue:normal  KEYS[8] queue:low
-- KEYS[8+i] result key of the i-th job (the old failure result is dropped)
-- KEYS end with the flow keys (see the prelude): a job of a group joins its group
-- ARGV per job: job id
-- returns: the number of jobs requeued
local moved = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      redis.call('DEL', KEYS[8 + i])
      push_ready(id, record, 6)
      moved = moved + 1
    end
  end
end
if moved > 0 then wake(KEYS[5]) end
return moved

-- run_now: move scheduled jobs (delays, retries in backoff) to the tail of their queue now
-- KEYS[1] scheduled  KEYS[2] jobs  KEYS[3] wake
-- KEYS[4] queue:high  KEYS[5] queue:normal  KEYS[6] queue:low
-- ARGV: job ids
-- returns: the number of jobs moved (ids that were not scheduled are skipped)
local priority_index = { high = 4, normal = 5, low = 6 }
local moved = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local record = redis.call('HGET', KEYS[2], id)
  if record and redis.call('ZREM', KEYS[1], id) == 1 then
    local ok, job = pcall(cjson.decode, record)
    local queue = 5
    if ok and type(job) == 'table' then queue = priority_index[job['priority']] or 5 end
    redis.call('RPUSH', KEYS[queue], id)
    moved = moved + 1
  end
end
if moved > 0 and redis.call('LLEN', KEYS[3]) == 0 then redis.call('RPUSH', KEYS[3], 1) end
return moved

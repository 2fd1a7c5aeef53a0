#!lua
-- claim_id: claim an explicit job id for one routing key, prefix-wide (step 1 of its enqueue)
-- KEYS[1] the id's index entry (bananas:jobid:{<id>}: its own slot on Redis Cluster)
-- ARGV[1] routing key  ARGV[2] entry ttl ms  ARGV[3] grace ms
-- ARGV[4] '' or a routing key the caller found not to hold the job: the entry is taken
--         over when it still names that key and was claimed at least grace ms ago
-- (no allow-oom: a submit is refused under maxmemory before anything is written)
-- returns: {routing key that owns the id, 1 when that is ARGV[1] now, else 0}
--
-- An enqueue with an explicit id is two idempotent steps in two slots: this claim, then
-- enqueue.lua on the owner's routing key. Interrupted between them, the entry names a
-- routing key that holds no job: a retry on that key enqueues it; a submit on another key
-- finds the key empty and takes the entry over once it is older than the grace (a claim
-- younger than that may still be on its way to step 2). Times are Redis' own (TIME).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = redis.call('GET', KEYS[1])
if entry then
  local sep = string.find(entry, '|', 1, true)
  local owner = sep and string.sub(entry, 1, sep - 1) or entry
  local at = sep and tonumber(string.sub(entry, sep + 1)) or 0
  if owner ~= ARGV[1] and (owner ~= ARGV[4] or now - at < tonumber(ARGV[3])) then
    return { owner, 0 }
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. now, 'PX', tonumber(ARGV[2]))
return { ARGV[1], 1 }

-- browse: one page of a routing key's jobs in one state, with their records (read-only)
-- KEYS[1] source: a ready LIST, or a ZSET (scheduled, leases, dead)
-- KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors
-- ARGV[1] 'list', 'zset' (lowest score first) or 'zrev' (highest first)
-- ARGV[2] start  ARGV[3] stop (inclusive, 0-based)
-- returns: flat array of job id, score ('' for a list), record ('' when gone), attempts, error
local kind = ARGV[1]
local start, stop = tonumber(ARGV[2]), tonumber(ARGV[3])
local ids, scores = {}, {}
if kind == 'list' then
  ids = redis.call('LRANGE', KEYS[1], start, stop)
else
  local rows
  if kind == 'zrev' then
    rows = redis.call('ZREVRANGE', KEYS[1], start, stop, 'WITHSCORES')
  else
    rows = redis.call('ZRANGE', KEYS[1], start, stop, 'WITHSCORES')
  end
  for i = 1, #rows, 2 do
    ids[#ids + 1] = rows[i]
    scores[#ids] = rows[i + 1]
  end
end
local out = {}
if #ids == 0 then return out end
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local attempts = redis.call('HMGET', KEYS[3], unpack(ids))
local errors = redis.call('HMGET', KEYS[4], unpack(ids))
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = scores[i] or ''
  out[#out + 1] = records[i] or ''
  out[#out + 1] = attempts[i] or '0'
  out[#out + 1] = errors[i] or ''
end
return out

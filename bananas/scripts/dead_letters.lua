-- dead_letters: page through the dead-letter queue, newest first (read-only)
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] errors
-- ARGV[1] offset  ARGV[2] count
-- returns: flat array of job id, dead-lettered at ms, record, attempts, error, ...
local rows = redis.call('ZREVRANGE', KEYS[1], ARGV[1], tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local id = rows[i]
  out[#out + 1] = id
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
  out[#out + 1] = redis.call('HGET', KEYS[4], id) or ''
end
return out

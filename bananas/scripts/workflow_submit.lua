-- workflow_submit: store a whole workflow graph at once (all or nothing), roots marked queued
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state
-- KEYS[6] results  KEYS[7] errors  KEYS[8] notify
-- ARGV[1] now ms  ARGV[2] output shape (JSON)  ARGV[3] success ttl ms  ARGV[4] failure ttl ms
-- ARGV[5] name (a label for listings)  ARGV[6] root nodes (comma list)
-- then per node: index, kind ('task' or 'join'), tolerate ('1' or '0'), deps (comma list),
--                next (comma list of dependents), dependency count, spec JSON ('' for a join)
-- returns: 1 stored; 0 the id exists (a resubmit, or a sweep that abandoned this id)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = (#ARGV - 6) / 7
if n < 1 or n ~= math.floor(n) then return redis.error_reply('ERR workflow_submit: malformed ARGV') end
local graph, specs, pending, state = {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 7 + i * 7
  local node = ARGV[b]
  graph[#graph + 1] = 'deps:' .. node
  graph[#graph + 1] = ARGV[b + 3]
  graph[#graph + 1] = 'next:' .. node
  graph[#graph + 1] = ARGV[b + 4]
  if ARGV[b + 1] == 'join' then
    graph[#graph + 1] = 'join:' .. node
    graph[#graph + 1] = '1'
  else
    specs[#specs + 1] = node
    specs[#specs + 1] = ARGV[b + 6]
  end
  if ARGV[b + 2] == '1' then
    graph[#graph + 1] = 'tol:' .. node
    graph[#graph + 1] = '1'
  end
  pending[#pending + 1] = node
  pending[#pending + 1] = ARGV[b + 5]
  state[#state + 1] = node
  if tonumber(ARGV[b + 5]) == 0 then state[#state + 1] = 'queued' else state[#state + 1] = 'waiting' end
end
-- HSET in slices: unpack() of a very large table overflows Lua's C stack
local function hset(key, flat)
  local step = 4000
  for s = 1, #flat, step do
    redis.call('HSET', key, unpack(flat, s, math.min(s + step - 1, #flat)))
  end
end
hset(KEYS[2], graph)
if #specs > 0 then hset(KEYS[3], specs) end
hset(KEYS[4], pending)
hset(KEYS[5], state)
redis.call('HSET', KEYS[1], 'status', 'running', 'created', ARGV[1], 'total', n,
           'remaining', n, 'failed', 0, 'output', ARGV[2], 'success_ttl', ARGV[3],
           'failure_ttl', ARGV[4], 'name', ARGV[5], 'roots', ARGV[6], 'started', 0)
return 1

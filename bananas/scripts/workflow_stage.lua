-- workflow_stage: store one slice of a workflow's graph, invisible until workflow_submit
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state  KEYS[6] roots
-- ARGV[1] staging ttl ms (the staged keys expire unless workflow_submit commits them)
-- then per node: index, kind ('task' or 'join'), tolerate ('1' or '0'), deps (comma list),
--                next (comma list of dependents), dependency count, spec JSON ('' for a join)
-- returns: 1 staged; 0 the workflow id exists already (a resubmit, or a tombstone)
-- A graph is written in slices so that no single script blocks Redis for long (a
-- 100,000-node graph is ~2 s of Lua); nothing reads a workflow before its meta exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = (#ARGV - 1) / 7
if n < 1 or n ~= math.floor(n) then return redis.error_reply('ERR workflow_stage: malformed ARGV') end
local graph, specs, pending, state, roots = {}, {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 2 + i * 7
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
  if tonumber(ARGV[b + 5]) == 0 then
    state[#state + 1] = 'queued'
    roots[#roots + 1] = node
  else
    state[#state + 1] = 'waiting'
  end
end
-- HSET in slices: unpack() of a very large table overflows Lua's C stack
local function push(cmd, key, flat)
  local step = 4000
  for s = 1, #flat, step do
    redis.call(cmd, key, unpack(flat, s, math.min(s + step - 1, #flat)))
  end
end
push('HSET', KEYS[2], graph)
if #specs > 0 then push('HSET', KEYS[3], specs) end
push('HSET', KEYS[4], pending)
push('HSET', KEYS[5], state)
if #roots > 0 then push('RPUSH', KEYS[6], roots) end
for k = 2, 6 do
  if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('PEXPIRE', KEYS[k], tonumber(ARGV[1])) end
end
return 1

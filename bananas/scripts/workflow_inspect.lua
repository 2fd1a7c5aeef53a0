-- workflow_inspect: one consistent snapshot of a workflow
-- KEYS[1] meta  KEYS[2] graph  KEYS[3] specs  KEYS[4] pending  KEYS[5] state
-- KEYS[6] results  KEYS[7] errors
-- returns: {meta (flat field/value), graph, specs, state, results, errors} as flat arrays;
--          an empty array for an unknown workflow
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[5]),
  redis.call('HGETALL', KEYS[6]),
  redis.call('HGETALL', KEYS[7]),
}

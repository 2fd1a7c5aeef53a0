#!lua flags=allow-oom
-- due_settle: set some routes' entries in a due index to the true earliest score of the set
-- each indexes (a route's leases or scheduled set), or remove them where that set is empty
-- KEYS[1] the due index (see the prelude)  KEYS[2..] the routes' sets (leases or scheduled)
-- (allow-oom: the reaper runs it, which must go on when Redis is full; it adds at most one
-- member to the index per set, for a set that exists)
-- returns: per set, ms from now (Redis' TIME) until that earliest score (0 or less: due),
--          or nil where the set is empty
-- A set of the wrong type (a hand edit) answers nil and keeps its entry, so the others of
-- the call are still settled and that route keeps being visited.
local now = now_ms()
local out = {}
for i = 2, #KEYS do
  local ok, earliest = pcall(settle_due, KEYS[1], KEYS[i])
  out[i - 1] = ok and earliest and earliest - now or false
end
return out

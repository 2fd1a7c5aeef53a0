#!lua flags=allow-oom
-- due_settle: set one route's entry in a due index to the true earliest score of the set it
-- indexes (a route's leases or scheduled set), or remove it when that set is empty
-- KEYS[1] the route's set (leases or scheduled)  KEYS[2] the due index (see the prelude)
-- (allow-oom: the reaper runs it, which must go on when Redis is full; it adds at most one
-- member to the index, for a set that exists)
-- returns: ms from now (Redis' TIME) until that earliest score (0 or less: due), or nil
-- when the set is empty
local earliest = settle_due(KEYS[2], KEYS[1])
if not earliest then return false end
return earliest - now_ms()

#!lua flags=no-writes,allow-oom
-- due_routes: which of some routes have something due in a due index, by Redis' clock
-- KEYS[1] the due index (see the prelude)
-- ARGV the members to look at (the routes' leases or scheduled keys)
-- returns: { positions in ARGV (from 1) of the members whose score is due (at or before
--            Redis' TIME), ms from now until the earliest score not yet due (-1: none) }
-- A member absent from the index has nothing to be due (the writers add it: see the
-- prelude). One ZMSCORE per 1,000 routes.
local out, soonest = {}, nil
if #ARGV == 0 then return { out, -1 } end
local now = now_ms()
for first = 1, #ARGV, 1000 do  -- (in chunks: unpack has a bound)
  local last = math.min(first + 999, #ARGV)
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, first, last))
  for i = first, last do
    local score = scores[i - first + 1]
    if score then
      local at = tonumber(score)
      if at <= now then out[#out + 1] = i
      elseif soonest == nil or at < soonest then soonest = at end
    end
  end
end
return { out, soonest and soonest - now or -1 }

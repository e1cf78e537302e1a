-- Finds a message's entry in a room's recent history (its current state).
-- KEYS: 1 the room's recent history. ARGV: 1 how the message's entry starts.
local start = ARGV[1]
for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(e, 1, #start) == start then return e end
end
return false

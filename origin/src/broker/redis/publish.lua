-- Publishes a room's outbox up to a seq, in seq order, once a WAIT has confirmed that the
-- entries are on enough replicas (replication is in order: when the entry with this seq is
-- there, so is every earlier one). Entries published twice (the removal lost in a failover)
-- are skipped by the sessions, which drop seqs they already have.
-- KEYS: 1 the room's outbox (payloads scored by seq)
-- ARGV: 1 the seq, 2 the room's channel, 3 'PUBLISH' or 'SPUBLISH'
-- Returns how many entries were published.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, payload in ipairs(due) do redis.call(ARGV[3], ARGV[2], payload) end
if #due > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
return #due

-- Sets a room's seq counter when Redis does not have it (from the database's last seq), and on
-- a cluster records this node as the counter's writer (see append.lua).
-- KEYS: 1 the room's seq counter, 2 the node that last moved it
-- ARGV: 1 where the count starts, 2 '1' on a cluster
-- Returns the counter.
if redis.call('SET', KEYS[1], ARGV[1], 'NX') and ARGV[2] == '1' then
  redis.call('SET', KEYS[2], redis.call('CLUSTER', 'MYID'))
end
return tonumber(redis.call('GET', KEYS[1]))

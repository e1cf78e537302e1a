-- Moves one persistence stream entry the database cannot take into the shard's dead-letter
-- stream, in one atomic step: the copy (its id, the reason, then its own fields) is added, and
-- the entry is acknowledged and deleted. A worker that dies before this call reads the entry
-- again and sets it aside once; after it, the entry is gone: it is never set aside twice.
--
-- KEYS: 1 the shard's dead-letter stream, 2 the shard's persistence stream
-- ARGV: 1 the workers' consumer group, 2 the entry's id, 3 the reason,
--       4 about how many entries the dead-letter stream keeps,
--       5.. the entry's fields and values, alternating
-- Returns the copy's id, or false when the entry is no longer in the stream (another worker
-- took it over and set it aside, or stored it, first).
if redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return false
end
local copy = {'id', ARGV[2], 'error', ARGV[3]}
for i = 5, #ARGV do
  copy[#copy + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', unpack(copy))
redis.call('XDEL', KEYS[2], ARGV[2])
return id

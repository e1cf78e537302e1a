-- Puts one set-aside entry back on its persistence stream, for the workers to write again, and
-- removes it from the dead-letter stream, in one atomic step (so no entry is replayed twice).
-- The copy carries the original entry's fields, without the set-aside `id` and `error`.
--
-- KEYS: 1 the shard's dead-letter stream, 2 the shard's persistence stream
-- ARGV: 1 the entry's id in the dead-letter stream
-- Returns the new id in the persistence stream, or false when there is no such entry.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return false
end
local fields = found[1][2]
local copy = {}
for i = 1, #fields, 2 do
  local name = fields[i]
  if name ~= 'id' and name ~= 'error' then
    copy[#copy + 1] = name
    copy[#copy + 1] = fields[i + 1]
  end
end
if #copy == 0 then
  return redis.error_reply('EMPTY the set-aside entry has no fields of its own')
end
local id = redis.call('XADD', KEYS[2], '*', unpack(copy))
redis.call('XDEL', KEYS[1], ARGV[1])
return id

-- Records that a user's connections on one instance entered or left a room, and publishes the
-- presence frame only when that changes whether the user is in the room at all (their first
-- instance entering, their last one leaving).
-- KEYS: 1 the room's presence hash (fields "user|instance"), 2 the instance's presence set
--       (members "room|user")
-- ARGV: 1 user id, 2 instance, 3 username, 4 '1' entering / '0' leaving, 5 the pub/sub payload,
--       6 room id, 7 the room's channel, 8 'PUBLISH' or 'SPUBLISH' (a cluster's sharded channel)
-- Returns 1 when the instance's state changed, 0 when it was already so.
local field = ARGV[1] .. '|' .. ARGV[2]
local member = ARGV[6] .. '|' .. ARGV[1]
local prefix = ARGV[1] .. '|'
local others = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= field and string.sub(f, 1, #prefix) == prefix then others = others + 1 end
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], field, ARGV[3])
  redis.call('SADD', KEYS[2], member)
else
  if redis.call('HDEL', KEYS[1], field) == 0 then return 0 end
  redis.call('SREM', KEYS[2], member)
end
if others == 0 then redis.call(ARGV[8], ARGV[7], ARGV[5]) end
return 1

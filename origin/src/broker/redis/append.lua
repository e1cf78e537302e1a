-- Appends one entry to a room's log in one atomic step: the request's idempotency, the room's
-- next seq, the recent history (kept true to edits and deletions), the persistence stream and
-- the publish to every instance (or, when acks wait for replicas, the room's outbox, published
-- by publish.lua once the entry is on them).
--
-- KEYS: 1 the room's seq counter, 2 the request's answer key, 3 the room's recent history
--       (entries scored by seq), 4 the persistence stream, 5 the room's outbox (payloads
--       scored by seq), 6 the node that last moved the seq counter, 7 the highest seq of the
--       room the workers have stored
-- ARGV: 1 the answer's message id, 2 the entry's JSON before its seq, 3 after it,
--       4 how many recent entries to keep (at least), 5 the most entries the stream may hold,
--       6 how long the answer is remembered (s), 7 the room's channel,
--       8 the pub/sub header before the seq, 9 after it,
--       10 the actor's id, 11 the request's reference, 12 when it was accepted (ms),
--       13 the seq of the message the entry changes ('' for a new message),
--       14 that message's new JSON, 15 its id when its edits lose their text (a deletion),
--       16 how to publish: 'PUBLISH', 'SPUBLISH' (a cluster's sharded channel) or 'DEFER'
--       (into the outbox), 17 '1' on a cluster: jump the seq past a failover,
--       18 by how much it jumps
-- Returns "MESSAGE_ID:SEQ", the first answer again for a resend.
local defer = ARGV[16] == 'DEFER'
local prev = redis.call('GET', KEYS[2])
if prev then
  -- A write, so that a WAIT after this call also covers the first attempt's writes.
  if defer then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
  return prev
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOSEQ the room has no seq counter')
end
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[5]) then
  return redis.error_reply('FULL the persistence stream is full')
end
if ARGV[17] == '1' then
  -- Another node moved this counter last: this one is a replica promoted since (or the slot
  -- moved). Seqs the old master handed out may not have reached it, and clients or workers
  -- may hold them: jump past them rather than reuse one.
  local me = redis.call('CLUSTER', 'MYID')
  if redis.call('GET', KEYS[6]) ~= me then
    redis.call('INCRBY', KEYS[1], ARGV[18])
    redis.call('SET', KEYS[6], me)
  end
end
local seq = redis.call('INCR', KEYS[1])
local entry = ARGV[2] .. seq .. ARGV[3]
local answer = ARGV[1] .. ':' .. seq
redis.call('SET', KEYS[2], answer, 'EX', ARGV[6])

if ARGV[13] ~= '' then
  -- The changed message, if still recent, shows its new state; a tombstone stays one.
  local cur = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[13], ARGV[13])
  if cur[1] and not string.find(cur[1], '"deleted_at":%d') then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], ARGV[13], ARGV[13])
    redis.call('ZADD', KEYS[3], ARGV[13], ARGV[14])
  end
end
if ARGV[15] ~= '' then
  -- A deleted message's recent edits lose their text. Serialized bodies escape every quote,
  -- so the first ',"body":"' and the next '","edited_at":' delimit the text.
  local needle = ',"id":"' .. ARGV[15] .. '",'
  local all = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    local e = all[i]
    if string.sub(e, 1, 16) == '{"type":"edited"' and string.find(e, needle, 1, true) then
      local a = string.find(e, ',"body":"', 1, true)
      local b = a and string.find(e, '","edited_at":', a + 9, true)
      if b and b > a + 9 then
        redis.call('ZREM', KEYS[3], e)
        redis.call('ZADD', KEYS[3], all[i + 1], string.sub(e, 1, a + 8) .. string.sub(e, b))
      end
    end
  end
end

redis.call('ZADD', KEYS[3], seq, entry)
if seq % 16 == 0 then
  -- Trimmed at every 16th entry, not at each: the history holds up to 15 more than asked.
  -- Only what the workers have stored goes: an entry still on its way to the database stays
  -- however far behind they are (the stream's cap bounds how much that can be), so recovery
  -- never finds it in neither place.
  local upto = math.min(seq - tonumber(ARGV[4]), tonumber(redis.call('GET', KEYS[7]) or '0'))
  if upto > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', upto)
  end
end
redis.call('XADD', KEYS[4], '*', 'f', entry, 'a', ARGV[10], 'r', ARGV[11], 't', ARGV[12])
local payload = ARGV[8] .. seq .. ARGV[9] .. '\n' .. entry
if defer then
  redis.call('ZADD', KEYS[5], seq, payload)
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[4]) + 1))
else
  redis.call(ARGV[16], ARGV[7], payload)
end
return answer

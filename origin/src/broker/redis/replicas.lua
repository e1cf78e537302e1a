-- Counts the replicas of this node (the master owning KEYS[1]'s slot) that are in sync: online
-- and heard from within the last 10 s (a busy replica may answer late; one that is gone is
-- not waited for; the lag reads -1 when the last ack came within the current second).
-- Checked before an append that will WAIT for replicas,
-- so that a shard without enough of them refuses at once instead of blocking its connection
-- for the whole WAIT timeout.
-- KEYS: 1 a key of the shard (it only routes the call)
-- Returns the count.
local info = redis.call('INFO', 'replication')
local n = 0
for lag in string.gmatch(info, 'state=online,offset=%d+,lag=(-?%d+)') do
  if tonumber(lag) <= 10 then n = n + 1 end
end
return n

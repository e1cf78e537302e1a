-- A ticketed upload is claimed by the one request that writes its bytes (an atomic
-- `UPDATE ... WHERE claimed_at IS NULL`), so two concurrent uses of a ticket cannot both write.
ALTER TABLE uploads ADD COLUMN claimed_at INTEGER;

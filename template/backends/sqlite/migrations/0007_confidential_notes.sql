-- Notes their owner marks confidential keep their body sealed at rest
-- (src/encryption.rs): the column then holds `enc1:<key id>:<ciphertext>`.

ALTER TABLE notes ADD COLUMN confidential INTEGER NOT NULL DEFAULT 0 CHECK (confidential IN (0, 1));

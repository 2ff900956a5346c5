-- Notes their owner marks confidential keep their body sealed at rest
-- (src/encryption.rs): the column then holds `enc1:<key id>:<ciphertext>`.

ALTER TABLE notes ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;

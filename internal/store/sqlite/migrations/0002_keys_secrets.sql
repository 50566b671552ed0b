-- 0002: wrapped data keys and sealed secrets.
--
-- data_keys holds data-encryption keys only in wrapped form: the bytes are
-- ciphertext under the key-encryption key, which never reaches this file.
-- secrets holds every version of every secret, sealed; the value itself is
-- never stored.

CREATE TABLE data_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    purpose      TEXT    NOT NULL,
    ref          TEXT    NOT NULL,
    kek_key_id   INTEGER NOT NULL CHECK (kek_key_id >= 0 AND kek_key_id <= 4294967295),
    wrapped      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    rewrapped_at INTEGER
) STRICT;

-- CountDataKeysByKEK, and the retire check on one KEK key.
CREATE INDEX data_keys_by_kek ON data_keys (kek_key_id);

CREATE TABLE secrets (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    sealed      BLOB    NOT NULL,
    data_key_id TEXT    NOT NULL,
    set_by      TEXT    NOT NULL,
    set_at      INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;

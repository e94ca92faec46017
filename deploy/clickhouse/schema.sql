-- keytower audit store. Written to the subset of SQL that ClickHouse 18.16 (Debian's
-- package) accepts, so it runs there and on current servers alike: no TTL, codecs,
-- skipping indexes, DateTime64, Map, JSON, LowCardinality or query parameters.

CREATE DATABASE IF NOT EXISTS keytower;

-- One row per audit record. Sinks deliver at least once, so a record may be inserted more
-- than once. ReplacingMergeTree collapses rows with the same sorting key, which ends with
-- the record id, and queries read with FINAL to see each record once before merges run.
-- Every record id is unique, so two genuine records are never collapsed together.
-- Partitions follow the record's own time, so a re-inserted record lands in the same
-- partition as its first copy (collapsing works only within one partition).
CREATE TABLE IF NOT EXISTS keytower.audit_records
(
    time DateTime,
    key_id String,
    record_id String,
    sequence UInt64,
    hash String,
    prev_hash String,
    message_type String,
    message_id String,
    actor String,
    subject String,
    source_stream String,
    source_sequence UInt64,
    correlation_id String,
    schema_version UInt16,
    canonical String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (key_id, record_id);

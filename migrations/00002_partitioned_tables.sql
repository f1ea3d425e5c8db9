-- The two high-volume tables, range-partitioned by month on their
-- timestamp. Only the DEFAULT partitions are created here: pgninja's
-- partition manager (`pgninja partitions run`, or the sidecar schedule)
-- creates the monthly ones relative to the current date, and drops or
-- detaches old ones, which a static migration cannot do.
--
-- A partitioned table's primary key must include the partition key, hence
-- (id, start_time) and (id, message_time). For the same reason
-- conversations carry no foreign key to call_records: it would have to
-- name both columns, and it would stop retention from dropping a month of
-- call_records while conversations of that month still exist.

-- +goose Up
CREATE TABLE call_records (
    id                  uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id             uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caller_phone        varchar(20)  NOT NULL,
    call_type           varchar(20)  NOT NULL DEFAULT 'incoming'
                        CHECK (call_type IN ('incoming', 'outgoing')),
    call_status         varchar(20)  NOT NULL
                        CHECK (call_status IN ('answered', 'blocked', 'missed', 'transferred', 'failed')),
    start_time          timestamptz  NOT NULL,
    end_time            timestamptz,
    duration_seconds    integer      CHECK (duration_seconds >= 0),
    azure_call_id       varchar(100),
    audio_recording_url text,
    processing_metadata jsonb        NOT NULL DEFAULT '{}',
    created_at          timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (id, start_time)
) PARTITION BY RANGE (start_time);

-- A user's call history, newest first.
CREATE INDEX call_records_user_time_idx ON call_records (user_id, start_time DESC);
-- Everything one number did recently (spam detection looks callers up).
CREATE INDEX call_records_caller_time_idx ON call_records (caller_phone, start_time DESC);
-- Dashboard ranges and per-status counts over a time window; also what the
-- partition manager uses to find DEFAULT-partition rows by range.
CREATE INDEX call_records_time_status_idx ON call_records (start_time, call_status);

CREATE TABLE call_records_default PARTITION OF call_records DEFAULT;

CREATE TABLE conversations (
    id                    uuid         NOT NULL DEFAULT gen_random_uuid(),
    call_record_id        uuid         NOT NULL,
    speaker               varchar(10)  NOT NULL CHECK (speaker IN ('caller', 'ai')),
    message_text          text         NOT NULL,
    message_time          timestamptz  NOT NULL,
    confidence_score      numeric(3,2) CHECK (confidence_score BETWEEN 0 AND 1),
    intent_category       varchar(50),
    emotion               varchar(20),
    processing_latency_ms integer      CHECK (processing_latency_ms >= 0),
    created_at            timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (id, message_time)
) PARTITION BY RANGE (message_time);

-- A call's transcript in order.
CREATE INDEX conversations_call_time_idx ON conversations (call_record_id, message_time);
-- Intent statistics over a time window; most AI turns have no intent.
CREATE INDEX conversations_intent_time_idx ON conversations (intent_category, message_time)
    WHERE intent_category IS NOT NULL;
CREATE INDEX conversations_time_idx ON conversations (message_time);

CREATE TABLE conversations_default PARTITION OF conversations DEFAULT;

-- +goose Down
DROP TABLE conversations;
DROP TABLE call_records;

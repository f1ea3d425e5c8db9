-- Dashboard statistics as materialized views, so the dashboard reads a few
-- hundred pre-aggregated rows instead of scanning a year of call_records.
-- Each view has a unique index so it can be refreshed CONCURRENTLY (readers
-- keep seeing the old contents meanwhile). refresh_dashboard_stats() is
-- what the sidecar's stats job and `pgninja demo-data` call.

-- +goose Up
CREATE MATERIALIZED VIEW mv_daily_call_stats AS
SELECT (start_time AT TIME ZONE 'UTC')::date                   AS day,
       count(*)                                                  AS total_calls,
       count(*) FILTER (WHERE call_status = 'answered')          AS answered_calls,
       count(*) FILTER (WHERE call_status = 'blocked')           AS blocked_calls,
       count(*) FILTER (WHERE call_status = 'missed')            AS missed_calls,
       count(DISTINCT user_id)                                   AS active_users,
       count(DISTINCT caller_phone)                              AS distinct_callers,
       round(avg(duration_seconds), 2)                           AS avg_duration_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95_duration_seconds
FROM call_records
GROUP BY 1;
CREATE UNIQUE INDEX mv_daily_call_stats_day_idx ON mv_daily_call_stats (day);

CREATE MATERIALIZED VIEW mv_user_call_summary AS
SELECT user_id,
       count(*)                                                  AS total_calls,
       count(*) FILTER (WHERE call_status = 'blocked')           AS blocked_calls,
       count(*) FILTER (WHERE start_time >= now() - interval '30 days') AS calls_last_30_days,
       round(avg(duration_seconds), 2)                           AS avg_duration_seconds,
       max(start_time)                                           AS last_call_at
FROM call_records
GROUP BY user_id;
CREATE UNIQUE INDEX mv_user_call_summary_user_idx ON mv_user_call_summary (user_id);

CREATE MATERIALIZED VIEW mv_spam_category_stats AS
SELECT p.spam_category,
       count(DISTINCT p.id)                    AS profiles,
       round(avg(p.risk_score), 3)             AS avg_risk_score,
       sum(p.total_reports)                    AS total_reports,
       count(i.id)                             AS interactions,
       count(DISTINCT i.user_id)               AS users_affected,
       count(i.id) FILTER (WHERE i.user_feedback = 'spam') AS confirmed_spam
FROM spam_profiles p
LEFT JOIN user_spam_interactions i ON i.spam_profile_id = p.id
GROUP BY p.spam_category;
CREATE UNIQUE INDEX mv_spam_category_stats_category_idx ON mv_spam_category_stats (spam_category);

CREATE MATERIALIZED VIEW mv_conversation_intent_stats AS
SELECT (message_time AT TIME ZONE 'UTC')::date  AS day,
       coalesce(intent_category, 'none')        AS intent_category,
       count(*)                                 AS messages,
       round(avg(confidence_score), 3)          AS avg_confidence,
       round(avg(processing_latency_ms), 1)     AS avg_latency_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_latency_ms) AS p95_latency_ms
FROM conversations
GROUP BY 1, 2;
CREATE UNIQUE INDEX mv_conversation_intent_stats_idx ON mv_conversation_intent_stats (day, intent_category);

-- One row per refresh, so a stale dashboard can be told from a quiet day.
CREATE TABLE stats_refresh_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view_name    text        NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    duration_ms  numeric     NOT NULL,
    concurrent   boolean     NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION refresh_dashboard_stats(concurrent boolean DEFAULT true)
RETURNS TABLE (view_name text, duration_ms numeric)
LANGUAGE plpgsql AS $$
DECLARE
    v       text;
    started timestamptz;
    conc    boolean;
BEGIN
    FOREACH v IN ARRAY ARRAY['mv_daily_call_stats', 'mv_user_call_summary',
                             'mv_spam_category_stats', 'mv_conversation_intent_stats'] LOOP
        -- CONCURRENTLY needs a populated view; fall back for the first fill.
        SELECT concurrent AND m.ispopulated INTO conc
        FROM pg_matviews m WHERE m.matviewname = v AND m.schemaname = current_schema();
        started := clock_timestamp();
        IF conc THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', v);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', v);
        END IF;
        view_name := v;
        duration_ms := round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
        INSERT INTO stats_refresh_log (view_name, duration_ms, concurrent) VALUES (v, duration_ms, conc);
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION refresh_dashboard_stats(boolean);
DROP TABLE stats_refresh_log;
DROP MATERIALIZED VIEW mv_conversation_intent_stats;
DROP MATERIALIZED VIEW mv_spam_category_stats;
DROP MATERIALIZED VIEW mv_user_call_summary;
DROP MATERIALIZED VIEW mv_daily_call_stats;

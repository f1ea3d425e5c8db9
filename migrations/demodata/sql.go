package demodata

// Demo users are +1555xxxxxxx, spam callers +1800xxxxxxx (their profiles
// are keyed by the number's sha256), whitelisted contacts +1666xxxxxxx.

const usersSQL = `
INSERT INTO users (phone_number, name, personality, voice_profile_id, preferences)
SELECT '+1555' || lpad(g::text, 7, '0'),
       'Demo User ' || g,
       (ARRAY['polite', 'direct', 'humorous', 'professional'])[1 + g % 4],
       CASE WHEN g % 3 = 0 THEN 'voice-' || g END,
       jsonb_build_object('language', (ARRAY['zh-CN', 'en-US'])[1 + g % 2], 'max_call_seconds', 60 + g % 120)
FROM generate_series(1, $1::bigint) g
ON CONFLICT (phone_number) DO NOTHING`

const spamSQL = `
INSERT INTO spam_profiles (phone_hash, spam_category, risk_score, confidence_level,
                           feature_vector, behavioral_patterns, total_reports, last_activity)
SELECT encode(sha256(convert_to('+1800' || lpad(g::text, 7, '0'), 'UTF8')), 'hex'),
       (ARRAY['sales', 'loan', 'investment', 'insurance', 'scam', 'survey', 'unknown'])[1 + g % 7],
       round(0.30 + (g % 70) / 100.0, 2),
       round(0.50 + (g % 50) / 100.0, 2),
       jsonb_build_object('avg_call_seconds', 20 + g % 90, 'calls_per_day', 1 + g % 40),
       jsonb_build_object('peak_hour', g % 24, 'weekday_only', g % 3 = 0),
       1 + g % 200,
       $2::timestamptz - (g % 90) * interval '1 day'
FROM generate_series(1, $1::bigint) g
ON CONFLICT (phone_hash) DO NOTHING`

// demoKeysSQL numbers the demo users and spam profiles 0..n-1 so the
// set-based inserts below can pick them by arithmetic on generate_series.
const demoKeysSQL = `
DROP TABLE IF EXISTS pg_temp.demo_users, pg_temp.demo_spam;
CREATE TEMP TABLE demo_users AS
    SELECT id, (row_number() OVER (ORDER BY phone_number) - 1) AS n FROM users WHERE phone_number LIKE '+1555%';
CREATE UNIQUE INDEX ON demo_users (n);
CREATE TEMP TABLE demo_spam AS
    SELECT id, (row_number() OVER (ORDER BY phone_hash) - 1) AS n FROM spam_profiles;
CREATE UNIQUE INDEX ON demo_spam (n);
ANALYZE demo_users, demo_spam;`

const whitelistsSQL = `
INSERT INTO smart_whitelists (user_id, contact_phone, contact_name, whitelist_type,
                              confidence_score, expires_at, hit_count, last_hit_at)
SELECT u.id,
       '+1666' || lpad(((u.n * 3 + k) % 10000000)::text, 7, '0'),
       'Contact ' || k,
       (ARRAY['manual', 'auto', 'temporary', 'learned'])[1 + (u.n + k) % 4],
       round(0.60 + ((u.n + k) % 40) / 100.0, 2),
       CASE WHEN (u.n + k) % 4 = 2 THEN $1::timestamptz + interval '7 days' END,
       (u.n * k) % 50,
       CASE WHEN (u.n * k) % 50 > 0 THEN $1::timestamptz - ((u.n + k) % 30) * interval '1 day' END
FROM demo_users u CROSS JOIN generate_series(1, 3) k
ON CONFLICT (user_id, contact_phone) DO NOTHING`

const interactionsSQL = `
INSERT INTO user_spam_interactions (user_id, spam_profile_id, interaction_count,
                                    last_interaction, user_feedback, effectiveness_score)
SELECT u.id, s.id,
       1 + (u.n + k) % 20,
       $1::timestamptz - ((u.n + k) % 60) * interval '1 day',
       (ARRAY['spam', 'not_spam', 'unknown'])[1 + (u.n * k) % 3],
       round(0.50 + ((u.n + k) % 50) / 100.0, 2)
FROM demo_users u
CROSS JOIN generate_series(1, 5) k
JOIN demo_spam s ON s.n = (u.n * 7 + k * 13) % $2::bigint
ON CONFLICT (user_id, spam_profile_id) DO NOTHING`

const configsSQL = `
INSERT INTO user_configs (user_id, config_key, config_value, inherits_global)
SELECT u.id, c.key, c.val, u.n % 5 <> 0
FROM demo_users u
CROSS JOIN (VALUES ('greeting', '"您好，我是您的AI助理，请问有什么事？"'::jsonb),
                   ('block_threshold', '0.7'::jsonb),
                   ('record_calls', 'true'::jsonb)) AS c(key, val)
ON CONFLICT (user_id, config_key) DO NOTHING`

// callsSQL inserts $1 calls with start times uniform in [$2, $3), spread
// over the $4 demo users, 60% of them from the $5 known spam numbers, and
// three conversation turns for every answered call, in one statement.
const callsSQL = `
WITH src AS (
    SELECT g, r1, r2, r3, st,
           CASE WHEN r1 < 0.45 THEN 'blocked' WHEN r1 < 0.80 THEN 'answered'
                WHEN r1 < 0.92 THEN 'missed' WHEN r1 < 0.97 THEN 'transferred' ELSE 'failed' END AS status,
           CASE WHEN r1 < 0.45 THEN (r2 * 5)::int WHEN r1 < 0.80 THEN 15 + (r2 * 240)::int ELSE 0 END AS dur,
           CASE WHEN r3 < 0.6 THEN '+1800' || lpad(floor(r3 / 0.6 * $5::bigint)::bigint::text, 7, '0')
                ELSE '+1' || (2000000000 + floor(r2 * 7999999999))::bigint::text END AS caller
    FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3,
                 $2::timestamptz + random() * ($3::timestamptz - $2::timestamptz) AS st
          FROM generate_series(1, $1::bigint) g) x
), calls AS (
    INSERT INTO call_records (user_id, caller_phone, call_type, call_status, start_time, end_time,
                              duration_seconds, azure_call_id, audio_recording_url, processing_metadata)
    SELECT u.id, s.caller, 'incoming', s.status, s.st, s.st + make_interval(secs => s.dur), s.dur,
           'azc-' || to_hex(s.g + $6::bigint) || '-' || to_hex((s.r2 * 2147483647)::int),
           CASE WHEN s.status = 'answered' THEN 'recordings/' || to_hex(s.g + $6::bigint) || '.opus' END,
           jsonb_build_object('spam_score', round(s.r3::numeric, 3), 'model', 'v2', 'asr_ms', 80 + (s.r2 * 300)::int)
    FROM src s JOIN demo_users u ON u.n = (s.g + $6::bigint) % $4::bigint
    RETURNING id, start_time, call_status, duration_seconds
)
INSERT INTO conversations (call_record_id, speaker, message_text, message_time, confidence_score,
                           intent_category, emotion, processing_latency_ms)
SELECT c.id,
       CASE WHEN k % 2 = 1 THEN 'caller' ELSE 'ai' END,
       CASE WHEN k % 2 = 1
            THEN (ARRAY['您好，我们这边有一个贷款产品想了解一下吗？', 'Hi, this is about your car warranty.',
                        '先生您好，现在投资理财收益很高', 'We have a special insurance offer today.',
                        '请问您最近有装修需求吗？', 'Can I ask you a few survey questions?'])[1 + (k + length(c.id::text) + extract(second FROM c.start_time)::int) % 6]
            ELSE (ARRAY['谢谢，我不需要，请不要再打来了。', 'No thank you, please remove this number.',
                        '我现在不方便，再见。', 'I am not interested, goodbye.'])[1 + extract(minute FROM c.start_time)::int % 4] END,
       c.start_time + k * interval '8 seconds',
       round((0.60 + random() * 0.39)::numeric, 2),
       CASE WHEN k % 2 = 1 THEN (ARRAY['sales_call', 'loan_offer', 'investment_pitch', 'insurance_sales', 'survey', 'unknown'])[1 + extract(second FROM c.start_time)::int % 6] END,
       (ARRAY['neutral', 'friendly', 'annoyed', 'pushy'])[1 + (k + extract(minute FROM c.start_time)::int) % 4],
       (80 + random() * 400)::int
FROM calls c CROSS JOIN generate_series(1, 3) k
WHERE c.call_status = 'answered'`

-- Base schema of AI Answer Ninja: users, their whitelists, known spam
-- callers, how each user dealt with them, and per-user settings.
-- gen_random_uuid() is built in since PostgreSQL 13, so no extension (and no
-- superuser) is needed to create or restore this schema.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TABLE users (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    phone_number     varchar(20)  NOT NULL UNIQUE,
    name             varchar(100) NOT NULL,
    personality      varchar(20)  NOT NULL DEFAULT 'polite'
                     CHECK (personality IN ('polite', 'direct', 'humorous', 'professional')),
    voice_profile_id varchar(100),
    preferences      jsonb        NOT NULL DEFAULT '{}',
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Numbers a user always lets through; "learned" entries come from the
-- user's own behaviour and may expire.
CREATE TABLE smart_whitelists (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_phone    varchar(20)  NOT NULL,
    contact_name     varchar(100),
    whitelist_type   varchar(20)  NOT NULL DEFAULT 'manual'
                     CHECK (whitelist_type IN ('manual', 'auto', 'temporary', 'learned')),
    confidence_score numeric(3,2) NOT NULL DEFAULT 1.00 CHECK (confidence_score BETWEEN 0 AND 1),
    is_active        boolean      NOT NULL DEFAULT true,
    expires_at       timestamptz,
    hit_count        integer      NOT NULL DEFAULT 0,
    last_hit_at      timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (user_id, contact_phone)
);
-- The call path asks "is this caller whitelisted for this user?" on every
-- incoming call; only active entries matter.
CREATE INDEX smart_whitelists_active_idx ON smart_whitelists (user_id, contact_phone) WHERE is_active;
-- The cleanup of temporary entries scans by expiry.
CREATE INDEX smart_whitelists_expiry_idx ON smart_whitelists (expires_at) WHERE expires_at IS NOT NULL;
CREATE TRIGGER smart_whitelists_updated_at BEFORE UPDATE ON smart_whitelists
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Known spam callers, keyed by a hash of the number so the table can be
-- shared without exposing numbers.
CREATE TABLE spam_profiles (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    phone_hash          varchar(64)  NOT NULL UNIQUE,
    spam_category       varchar(30)  NOT NULL
                        CHECK (spam_category IN ('sales', 'loan', 'investment', 'insurance', 'scam', 'survey', 'unknown')),
    risk_score          numeric(3,2) NOT NULL DEFAULT 0.50 CHECK (risk_score BETWEEN 0 AND 1),
    confidence_level    numeric(3,2) NOT NULL DEFAULT 0.50 CHECK (confidence_level BETWEEN 0 AND 1),
    feature_vector      jsonb        NOT NULL DEFAULT '{}',
    behavioral_patterns jsonb        NOT NULL DEFAULT '{}',
    total_reports       integer      NOT NULL DEFAULT 1,
    last_activity       timestamptz  NOT NULL DEFAULT now(),
    created_at          timestamptz  NOT NULL DEFAULT now(),
    updated_at          timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX spam_profiles_category_risk_idx ON spam_profiles (spam_category, risk_score DESC);
CREATE TRIGGER spam_profiles_updated_at BEFORE UPDATE ON spam_profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_spam_interactions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    spam_profile_id     uuid         NOT NULL REFERENCES spam_profiles (id) ON DELETE CASCADE,
    interaction_count   integer      NOT NULL DEFAULT 1,
    last_interaction    timestamptz  NOT NULL DEFAULT now(),
    user_feedback       varchar(20)  NOT NULL DEFAULT 'unknown'
                        CHECK (user_feedback IN ('spam', 'not_spam', 'unknown')),
    effectiveness_score numeric(3,2) CHECK (effectiveness_score BETWEEN 0 AND 1),
    created_at          timestamptz  NOT NULL DEFAULT now(),
    updated_at          timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (user_id, spam_profile_id)
);
-- "Which users did this caller reach?" (the unique index serves by user).
CREATE INDEX user_spam_interactions_profile_idx ON user_spam_interactions (spam_profile_id);
CREATE TRIGGER user_spam_interactions_updated_at BEFORE UPDATE ON user_spam_interactions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_configs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    config_key       varchar(100) NOT NULL,
    config_value     jsonb        NOT NULL,
    inherits_global  boolean      NOT NULL DEFAULT true,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (user_id, config_key)
);
CREATE TRIGGER user_configs_updated_at BEFORE UPDATE ON user_configs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- +goose Down
DROP TABLE user_configs;
DROP TABLE user_spam_interactions;
DROP TABLE spam_profiles;
DROP TABLE smart_whitelists;
DROP TABLE users;
DROP FUNCTION set_updated_at();

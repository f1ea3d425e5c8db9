-- set_updated_at() only stamps the row being written. Declared STABLE,
-- PostgreSQL refuses any write in it, and pgninja's table consistency may
-- then count an UPDATE of these tables as writing them alone, instead of
-- every table (a volatile trigger function could write anything).

-- +goose Up
ALTER FUNCTION set_updated_at() STABLE;

-- +goose Down
ALTER FUNCTION set_updated_at() VOLATILE;

package parser

import "strings"

// BuiltinVolatility knows common PostgreSQL built-ins so that typical
// queries route correctly before (or without) a pg_proc load. Only the
// volatile/not-volatile split matters for routing; anything not listed is
// VolatilityUnknown, which routes like Volatile.
//
// It is a switch rather than a map so the table is compiled-in constant
// data, not a package-level variable.
func BuiltinVolatility(name string) Volatility {
	name = strings.TrimPrefix(name, "pg_catalog.")
	switch name {
	// Volatile: side effects, or a different answer on each call/server.
	case "random", "random_normal", "setseed",
		"nextval", "currval", "lastval", "setval",
		"gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
		"clock_timestamp", "timeofday",
		"pg_sleep", "pg_sleep_for", "pg_sleep_until",
		"txid_current", "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned",
		"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
		"pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
		"pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
		"pg_notify", "set_config",
		"pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn", "pg_switch_wal",
		"pg_is_in_recovery", "pg_last_wal_replay_lsn", "pg_last_wal_receive_lsn", "pg_last_xact_replay_timestamp",
		"pg_cancel_backend", "pg_terminate_backend", "pg_reload_conf", "pg_rotate_logfile",
		"pg_stat_reset", "pg_stat_reset_shared", "pg_create_restore_point", "pg_logical_emit_message",
		"pg_read_file", "pg_read_binary_file", "pg_ls_dir",
		"pg_table_size", "pg_relation_size", "pg_total_relation_size", "pg_indexes_size", "pg_database_size",
		"lo_import", "lo_export", "lo_create", "lo_unlink", "lo_open", "lo_write", "lo_put",
		"dblink", "dblink_exec":
		return Volatile

	// Stable: fixed within a statement, safe on a replica.
	case "now", "transaction_timestamp", "statement_timestamp", "localtimestamp", "current_timestamp",
		"current_date", "current_time", "localtime",
		"current_setting", "current_database", "current_schema", "current_schemas", "current_user",
		"session_user", "current_role", "user", "version", "pg_backend_pid", "inet_client_addr",
		"to_char", "to_timestamp", "to_date", "to_number", "age", "timezone", "date_trunc", "date_part",
		"extract", "format", "concat", "concat_ws", "quote_literal", "quote_nullable",
		"to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object", "jsonb_build_object",
		"json_build_array", "jsonb_build_array", "json_agg", "jsonb_agg",
		"json_object_agg", "generate_series", "obj_description", "col_description",
		"has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege",
		"has_function_privilege", "pg_has_role", "pg_get_viewdef", "pg_get_indexdef", "pg_get_constraintdef",
		"pg_typeof", "to_regclass", "to_regtype", "regclass", "txid_current_snapshot",
		"pg_postmaster_start_time", "pg_conf_load_time", "pg_column_size",
		"array_to_string", "date", "length", "numeric", "to_tsvector", "to_tsquery", "plainto_tsquery",
		"websearch_to_tsquery", "phraseto_tsquery", "ts_headline":
		return Stable

	// Immutable: pure functions of their arguments.
	case "abs", "ceil", "ceiling", "floor", "round", "trunc", "sqrt", "cbrt", "power", "pow", "mod", "exp",
		"ln", "log", "log10", "sign", "div", "greatest", "least", "coalesce", "nullif", "width_bucket",
		"lower", "upper", "initcap", "char_length", "character_length", "octet_length", "bit_length",
		"substr", "substring", "position", "strpos", "replace", "translate", "split_part", "btrim", "ltrim",
		"rtrim", "trim", "lpad", "rpad", "left", "right", "reverse", "repeat", "overlay", "starts_with",
		"md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode", "ascii", "chr", "quote_ident",
		"regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
		"regexp_split_to_table", "regexp_like", "regexp_count", "regexp_substr", "regexp_instr",
		"string_to_array", "array_length", "array_upper", "array_lower", "array_ndims",
		"array_dims", "array_position", "array_positions", "array_append", "array_prepend", "array_cat",
		"array_remove", "array_replace", "cardinality", "unnest",
		"jsonb_set", "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty",
		"jsonb_array_length", "json_array_length", "jsonb_array_elements", "json_array_elements",
		"jsonb_array_elements_text", "json_array_elements_text", "jsonb_each", "json_each",
		"jsonb_each_text", "json_each_text", "jsonb_object_keys", "json_object_keys", "jsonb_typeof",
		"json_typeof", "jsonb_extract_path", "json_extract_path", "jsonb_extract_path_text",
		"json_extract_path_text",
		"make_date", "make_time", "make_interval", "isfinite", "date_bin", "justify_days", "justify_hours",
		"justify_interval", "pg_size_pretty", "array_agg", "string_agg", "json_object", "jsonb_object",
		"jsonb_object_agg", "jsonb_path_query", "jsonb_path_exists", "jsonb_path_match", "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "bit_and", "bit_or",
		"stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
		"percentile_cont", "percentile_disc", "mode", "corr", "covar_pop", "covar_samp",
		"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
		"lag", "lead", "first_value", "last_value", "nth_value",
		"num_nonnulls", "num_nulls", "int4", "int8", "text", "float8",
		"ts_rank", "ts_rank_cd", "similarity", "word_similarity":
		return Immutable
	}
	return VolatilityUnknown
}

// primaryOnly lists functions that pg_proc calls stable but that fail on a
// hot standby because they assign a transaction ID. They must route like
// volatile functions whatever a loaded pg_proc map says.
func primaryOnly(name string) bool {
	switch strings.TrimPrefix(name, "pg_catalog.") {
	case "txid_current", "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned":
		return true
	}
	return false
}

package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeOf(time.Duration(0))

// NoSuchSetting is the FieldError message for a key that names no setting.
const NoSuchSetting = "no such setting"

// setPath assigns val to the scalar setting at the dotted yaml path, e.g.
// "pool.max_size". Lists and maps are only settable from the file.
func setPath(cfg *Config, path, val string) error {
	v := reflect.ValueOf(cfg).Elem()
	for _, part := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return &FieldError{Field: path, Msg: "not a settable scalar"}
		}
		f, ok := fieldByTag(v, part)
		if !ok {
			return &FieldError{Field: path, Msg: NoSuchSetting}
		}
		v = f
	}
	if err := setScalar(v, val); err != nil {
		return &FieldError{Field: path, Msg: err.Error()}
	}
	return nil
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if yamlName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func yamlName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return tag
}

func setScalar(v reflect.Value, s string) error {
	switch {
	case v.Kind() == reflect.Pointer && isScalar(v.Type().Elem()):
		// An optional setting (log_stats): set, it holds the value.
		nv := reflect.New(v.Type().Elem())
		if err := setScalar(nv.Elem(), s); err != nil {
			return err
		}
		v.Set(nv)
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, not %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, not %q", s)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("not a settable scalar")
	}
	return nil
}

// scalarPaths lists the dotted paths of every scalar setting reachable
// through structs, which are the ones the environment may override.
func scalarPaths(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch {
		case isScalar(f.Type), f.Type.Kind() == reflect.Pointer && isScalar(f.Type.Elem()):
			*out = append(*out, path)
		case f.Type.Kind() == reflect.Struct:
			scalarPaths(f.Type, path, out)
		}
	}
}

// isScalar: a setting of type t takes one value from a flag or the
// environment.
func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Bool, reflect.Float64:
		return true
	}
	return t == durationType
}

// EnvName is the environment variable that overrides the setting at path.
func EnvName(path string) string {
	return "PGNINJA_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(path))
}

func applyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PGNINJA_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	var paths []string
	scalarPaths(reflect.TypeOf(*cfg), "", &paths)
	for _, p := range paths {
		if v, ok := env[EnvName(p)]; ok {
			if err := setPath(cfg, p, v); err != nil {
				return fmt.Errorf("%s: %w", EnvName(p), err)
			}
		}
	}
	return nil
}

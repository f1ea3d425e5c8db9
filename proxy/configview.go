package proxy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ai-ninja/pgninja/config"
	"gopkg.in/yaml.v3"
)

// configEntry is one setting as SHOW CONFIG and the reload log name it:
// its dotted key, as the config file and --set spell it, and its value.
type configEntry struct{ key, value string }

// restartOnly are the settings (a key, or a section and all below it)
// that a running pgninja leaves as they were until it restarts: the
// listeners, the log output, the sidecar and the routing switches. A
// reload refuses a change to routing.enabled or routing.consistency and
// logs a change to the others.
var restartOnly = []string{"listen", "unix_socket_dir", "so_reuseport", "admin_listen", "log_format",
	"sidecar", "routing.enabled", "routing.consistency"}

// restartSetting is the entry of restartOnly that key falls under, or "".
func restartSetting(key string) string {
	for _, r := range restartOnly {
		if key == r || strings.HasPrefix(key, r+".") || strings.HasPrefix(key, r+"[") {
			return r
		}
	}
	return ""
}

// flattenConfig lists cfg's settings by key, sorted. With redact,
// passwords and DSNs (which may hold one) show only whether they are set.
func flattenConfig(cfg *config.Config, redact bool) ([]configEntry, error) {
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	var out []configEntry
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(strings.TrimPrefix(key+"."+k, "."), v[k])
			}
		case []any:
			if len(v) == 0 {
				out = append(out, configEntry{key, "[]"})
			}
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", key, i), e)
			}
		default:
			val := fmt.Sprint(v)
			if v == nil {
				val = ""
			}
			last := key[strings.LastIndexAny(key, ".]")+1:]
			if redact && val != "" && (strings.Contains(last, "password") || strings.HasSuffix(last, "dsn")) {
				val = "(set)"
			}
			out = append(out, configEntry{key, val})
		}
	}
	walk("", tree)
	return out, nil
}

// atRestart names the changed settings that only a restart applies (by
// their restartOnly entry, each once).
func atRestart(old, cfg *config.Config) []string {
	was, err1 := flattenConfig(old, false)
	is, err2 := flattenConfig(cfg, false)
	if err1 != nil || err2 != nil {
		return nil
	}
	before := make(map[string]string, len(was))
	for _, e := range was {
		before[e.key] = e.value
	}
	changed := map[string]bool{}
	for _, e := range is {
		if v, ok := before[e.key]; !ok || v != e.value {
			changed[restartSetting(e.key)] = true
		}
		delete(before, e.key)
	}
	for k := range before { // settings the new file no longer has
		changed[restartSetting(k)] = true
	}
	var out []string
	for _, r := range restartOnly {
		if changed[r] {
			out = append(out, r)
		}
	}
	return out
}

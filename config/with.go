package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// With returns a copy of c with the scalar setting at path (a dotted key,
// as --set and SHOW CONFIG spell it) set to val, and the copy validated
// whole; c itself is left as it is. Defaults are not filled in again: a
// zero or empty val is taken as given, except that pool.reset_query
// "none" means no reset, as in the file.
func (c *Config) With(path, val string) (*Config, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("copying the config: %w", err)
	}
	out := &Config{}
	if err := yaml.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("copying the config: %w", err)
	}
	out.Path = c.Path
	for i := range out.Backends {
		out.Backends[i].weightSet = c.Backends[i].weightSet
	}
	if path == "pool.reset_query" && val == "none" {
		val = ""
	}
	if err := setPath(out, path, val); err != nil {
		return nil, err
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

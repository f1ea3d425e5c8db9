package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvConfigPath names the environment variable that points at the config
// file when no --config flag is given.
const EnvConfigPath = "PGNINJA_CONFIG"

// DefaultPath is where pgninja looks for its configuration when neither
// --config nor PGNINJA_CONFIG is given. `make demo` writes its config there so
// that a second terminal's `pgninja backup run` talks to the running demo.
func DefaultPath() string {
	if p := os.Getenv(EnvConfigPath); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "pgninja.yaml"
	}
	return filepath.Join(dir, "pgninja", "pgninja.yaml")
}

// Load reads path (or DefaultPath when empty), applies the overrides in
// order (later wins), then the PGNINJA_* environment, fills defaults and
// validates. Overrides are "dotted.path=value" pairs, as from --set.
func Load(path string, overrides []string) (*Config, error) {
	if path == "" {
		path = DefaultPath()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, overrides, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Path = path
	// Every file the config names is the config's neighbour unless its path
	// is absolute, so that a config moved with its files still finds them
	// whatever directory pgninja was started from.
	for _, f := range []*string{&cfg.Auth.UsersFile, &cfg.Auth.HBAFile, &cfg.TLS.CertFile, &cfg.TLS.KeyFile,
		&cfg.TLS.ClientCAFile, &cfg.TLS.BackendCAFile, &cfg.TLS.BackendCertFile, &cfg.TLS.BackendKeyFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	return cfg, nil
}

// Parse decodes YAML strictly (unknown fields are errors), applies
// overrides and the PGNINJA_* variables found in environ, fills defaults
// and validates the result as a whole.
func Parse(data []byte, overrides []string, environ []string) (*Config, error) {
	cfg := &Config{}
	cfg.presetDefaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty document is a valid, all-defaults file; validation judges it.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if err := markGivenWeights(data, cfg); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	for _, o := range overrides {
		key, val, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("override %q: want key=value", o)
		}
		if err := setPath(cfg, key, val); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(cfg, environ); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// markGivenWeights notes which backends the file gave a weight, which
// the decoded int alone cannot tell from an absent one.
func markGivenWeights(data []byte, cfg *Config) error {
	var given struct {
		Backends []struct {
			Weight *int `yaml:"weight"`
		} `yaml:"backends"`
	}
	if err := yaml.Unmarshal(data, &given); err != nil {
		return err
	}
	for i, b := range given.Backends {
		if i < len(cfg.Backends) && b.Weight != nil {
			cfg.Backends[i].weightSet = true
		}
	}
	return nil
}

package main

import (
	"flag"
	"strings"

	"github.com/ai-ninja/pgninja/config"
)

// configFlags are the flags every subcommand that reads the config shares.
type configFlags struct {
	path string
	sets multiFlag
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "config file (default: $PGNINJA_CONFIG or "+config.DefaultPath()+")")
	fs.Var(&c.sets, "set", "override a setting, e.g. --set pool.max_size=30 (repeatable)")
}

func (c *configFlags) load() (*config.Config, error) {
	return config.Load(c.path, c.sets)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

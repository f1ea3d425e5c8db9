package pgtool

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Tools finds the PostgreSQL client programs.
type Tools struct {
	// Dir, when set, is the only place looked in.
	Dir string
}

// Path returns the program to run against a server of major version
// serverMajor. pg_dump refuses servers newer than itself and an older
// pg_restore cannot read a newer archive, so the Debian directory matching
// the server's major version is preferred over whatever is first in PATH.
func (t Tools) Path(name string, serverMajor int) (string, error) {
	if t.Dir != "" {
		p := filepath.Join(t.Dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s (sidecar.pg_bin_dir): %w", name, err)
		}
		return p, nil
	}
	if serverMajor > 0 {
		p := filepath.Join("/usr/lib/postgresql", strconv.Itoa(serverMajor), "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in /usr/lib/postgresql/%d/bin or PATH (set sidecar.pg_bin_dir)", name, serverMajor)
	}
	return p, nil
}

// Version runs `path --version`, e.g. "pg_dump (PostgreSQL) 15.8".
func Version(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

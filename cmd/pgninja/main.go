// Command pgninja is a PostgreSQL wire-protocol proxy with pooling,
// read/write routing, caching, statistics and a maintenance sidecar.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one `pgninja <name>` subcommand. Each lives in its own file.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":      {"run the proxy (and its sidecar loop)", runServe},
		"passwd":     {"print a users-file line with a SCRAM-SHA-256 verifier", runPasswd},
		"migrate":    {"apply or roll back the schema migrations (up|down|status)", runMigrate},
		"demo-data":  {"load sample AI Answer Ninja data (--rows N call records)", runDemoData},
		"partitions": {"partition status and maintenance (status|run|archives|restore-archive)", runPartitions},
		"backup":     {"encrypted backups (run|list|verify ID|restore ID --to DSN)", runBackup},
		"restore":    {"point-in-time recovery: prepare a data directory (--target-time T --to-dir DIR)", runRestore},
		"pitr":       {"WAL archiving and base backups for point-in-time recovery (base|list|archive)", runPITR},
	}
}

func main() {
	cmds := commands()
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(cmds)
		os.Exit(2)
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "pgninja: unknown command %q\n\n", os.Args[1])
		usage(cmds)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "pgninja %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(cmds map[string]command) {
	fmt.Fprintln(os.Stderr, "usage: pgninja <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, cmds[n].summary)
	}
}

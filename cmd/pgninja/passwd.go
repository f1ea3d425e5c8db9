package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ai-ninja/pgninja/internal/auth"
)

// runPasswd prints (or appends to a users file) a line with a SCRAM
// verifier, so plain passwords need not be stored.
func runPasswd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	file := fs.String("file", "", "append the line to this users file instead of printing it")
	iters := fs.Int("iterations", 4096, "SCRAM iteration count")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgninja passwd [--file users.txt] USER  (password read from stdin or PGNINJA_PASSWORD)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	user := fs.Arg(0)
	pass := os.Getenv("PGNINJA_PASSWORD")
	if pass == "" {
		fmt.Fprint(os.Stderr, "password: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no password given")
		}
		pass = strings.TrimRight(line, "\r\n")
	}
	v, err := auth.Verifier(user, pass, *iters)
	if err != nil {
		return err
	}
	line := auth.FormatUser(user, v) + "\n"
	if *file == "" {
		fmt.Print(line)
		return nil
	}
	f, err := os.OpenFile(*file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line)
	return err
}

// Command cgfuncs turns a callgrind profile taken with --dump-instr=yes
// into the instructions each function of a Go binary executed per
// transaction, for `make bench-instructions`.
//
// callgrind_annotate's own per-function figures are wrong for Go: callgrind
// attributes cost to the function on its shadow call stack, which the
// runtime's goroutine switches (one stack abandoned for another) leave
// pointing at whatever ran before, so most of a run lands on a handful of
// unrelated functions. The instruction addresses are right, so this maps
// each address to the function whose symbol covers it.
//
//	cgfuncs -binary bin/pgninja -xacts 25600 -top 30 callgrind.out.1
package main

import (
	"bufio"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	binary := flag.String("binary", "", "the profiled executable (its symbol table names the functions)")
	xacts := flag.Int64("xacts", 0, "transactions the profile covers; figures are per transaction")
	top := flag.Int("top", 30, "functions to list")
	flag.Parse()
	if *binary == "" || *xacts <= 0 || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cgfuncs -binary BIN -xacts N [-top K] CALLGRIND-OUT")
		os.Exit(2)
	}
	if err := run(*binary, flag.Arg(0), *xacts, *top, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cgfuncs:", err)
		os.Exit(1)
	}
}

func run(binary, profile string, xacts int64, top int, w io.Writer) error {
	syms, err := functions(binary)
	if err != nil {
		return err
	}
	f, err := os.Open(profile)
	if err != nil {
		return err
	}
	defer f.Close()
	costs, err := selfCosts(f)
	if err != nil {
		return fmt.Errorf("%s: %w", profile, err)
	}
	byFunc := map[string]int64{}
	var total int64
	for addr, ir := range costs {
		byFunc[syms.name(addr)] += ir
		total += ir
	}
	type row struct {
		name string
		ir   int64
	}
	rows := make([]row, 0, len(byFunc))
	for n, ir := range byFunc {
		rows = append(rows, row{n, ir})
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].ir > rows[j].ir || rows[i].ir == rows[j].ir && rows[i].name < rows[j].name
	})
	fmt.Fprintf(w, "| instructions per transaction | share | function |\n|---:|---:|---|\n")
	for i, r := range rows {
		if i == top {
			break
		}
		fmt.Fprintf(w, "| %.0f | %.1f%% | `%s` |\n", float64(r.ir)/float64(xacts), 100*float64(r.ir)/float64(total), r.name)
	}
	fmt.Fprintf(w, "| %.0f | 100%% | all |\n", float64(total)/float64(xacts))
	return nil
}

// selfCosts sums the first event (Ir) by instruction address. A cost line
// right after a calls= line is the call's inclusive cost, already counted
// where it was spent, so it moves the position but adds nothing.
func selfCosts(r io.Reader) (map[uint64]int64, error) {
	costs := map[uint64]int64{}
	var (
		fields     int // position fields per cost line
		last       []uint64
		afterCalls bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		switch c := line[0]; {
		case strings.HasPrefix(line, "positions:"):
			pos := strings.Fields(strings.TrimPrefix(line, "positions:"))
			if len(pos) == 0 || pos[0] != "instr" {
				return nil, errors.New("not taken with --dump-instr=yes (positions: " + strings.Join(pos, " ") + ")")
			}
			fields, last = len(pos), make([]uint64, len(pos))
		case strings.HasPrefix(line, "calls="):
			afterCalls = true
		case c >= '0' && c <= '9' || c == '+' || c == '-' || c == '*':
			if fields == 0 {
				return nil, errors.New("a cost line before the positions: line")
			}
			parts := strings.Fields(line)
			if len(parts) < fields {
				return nil, fmt.Errorf("short cost line %q", line)
			}
			for i := 0; i < fields; i++ {
				v, err := position(parts[i], last[i])
				if err != nil {
					return nil, fmt.Errorf("cost line %q: %w", line, err)
				}
				last[i] = v
			}
			if afterCalls {
				afterCalls = false
				continue
			}
			if len(parts) > fields {
				ir, err := strconv.ParseInt(parts[fields], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("cost line %q: %w", line, err)
				}
				costs[last[0]] += ir
			}
		}
	}
	return costs, sc.Err()
}

// position decodes one position field: absolute (decimal or 0x hex),
// relative to the last line's (+N, -N) or the same (*).
func position(s string, last uint64) (uint64, error) {
	switch s[0] {
	case '*':
		return last, nil
	case '+', '-':
		d, err := strconv.ParseInt(s[1:], 0, 64)
		if err != nil {
			return 0, err
		}
		if s[0] == '-' {
			d = -d
		}
		return uint64(int64(last) + d), nil
	}
	return strconv.ParseUint(s, 0, 64)
}

// symtab is a binary's function symbols by address.
type symtab []elf.Symbol

func functions(binary string) (symtab, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (a stripped binary names no functions)", binary, err)
	}
	var syms symtab
	for _, s := range all {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			syms = append(syms, s)
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	return syms, nil
}

// name is the function covering addr; code outside the binary (the
// dynamic loader, libc called by cgo) has no name here.
func (t symtab) name(addr uint64) string {
	i := sort.Search(len(t), func(i int) bool { return t[i].Value > addr }) - 1
	if i < 0 || addr >= t[i].Value+max(t[i].Size, 1) {
		return "(outside the binary)"
	}
	return t[i].Name
}

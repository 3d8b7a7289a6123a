package main

import (
	"fmt"
	"io"
	"log"

	"github.com/edgeway/gateway/declarative"
	"github.com/edgeway/gateway/store"
)

// openStandalone loads the file into an in-memory store and returns the
// watcher that keeps the store equal to the file. A file that does not
// load is an error: the gateway starts only with a good configuration.
func openStandalone(path string) (*store.Memory, *declarative.Watcher, error) {
	mem := store.NewMemory()
	w := &declarative.Watcher{Path: path, Store: mem, Logf: log.Printf}
	if _, err := w.Load(); err != nil {
		mem.Close()
		return nil, nil, fmt.Errorf("standalone: cannot load the configuration: %w", err)
	}
	return mem, w, nil
}

// runValidate is `gateway validate FILE`: it loads FILE as standalone mode
// would, prints every problem as "FILE:line:col: message" on stderr, and
// returns 1 when there is any (warnings do not count), 2 for a usage
// error, 0 with a summary on stdout when the file is good.
func runValidate(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: gateway validate FILE")
		return 2
	}
	file := args[0]
	res, err := declarative.LoadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	for _, p := range res.Problems {
		if p.Line > 0 {
			fmt.Fprintf(stderr, "%s:%s\n", file, p)
		} else {
			fmt.Fprintf(stderr, "%s: %s\n", file, p)
		}
	}
	if !res.OK() {
		n := 0
		for _, p := range res.Problems {
			if !p.Warning {
				n++
			}
		}
		fmt.Fprintf(stderr, "%s: invalid: %d problem(s)\n", file, n)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%s)\n", file, res.Summary())
	return 0
}

// Command pump is the simplest TCP relay Go allows, in two forms, for
// bench/run.sh to measure beside pgninja and PgBouncer: what any Go proxy
// pays before it does any work of its own.
//
//	pump -mode netpoll -listen 127.0.0.1:27438 -backend 127.0.0.1:27432
//
// netpoll: two goroutines and io.Copy per connection, on the runtime's
// network poller, as every net.Conn program waits.
//
// epoll: one locked OS thread with an epoll set of its own, raw read and
// write system calls and no goroutine per connection, as PgBouncer's
// libevent loop works. It never enters the Go scheduler, so it shows what
// the runtime's scheduling costs the netpoll form (and pgninja).
//
// coro: the same loop, but each direction of a connection is written as
// plain blocking-style copying and runs as a coroutine (iter.Pull) that
// yields to the loop when its socket is not ready. It shows whether code
// written like pgninja's sessions can keep the loop's speed.
//
// Neither pools, parses or authenticates: each client gets its own
// PostgreSQL connection and speaks to it through the relay byte for byte.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
)

func main() {
	mode := flag.String("mode", "netpoll", "netpoll, epoll or coro")
	listen := flag.String("listen", "127.0.0.1:0", "address to accept clients on")
	backend := flag.String("backend", "", "address of the server to relay to")
	flag.Parse()
	if *backend == "" {
		log.Fatal("pump: -backend is required")
	}
	if err := run(*mode, *listen, *backend, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves until the listener fails; ready, when set, gets the address
// it listens on.
func run(mode, listen, backend string, ready func(string)) error {
	switch mode {
	case "netpoll":
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		if ready != nil {
			ready(ln.Addr().String())
		}
		return serveNetpoll(ln, backend)
	case "epoll":
		return serveEpoll(listen, backend, ready)
	case "coro":
		return serveCoro(listen, backend, ready)
	}
	return fmt.Errorf("pump: unknown -mode %q (netpoll, epoll or coro)", mode)
}

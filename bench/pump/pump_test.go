package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// echoServer answers every byte with itself, as a stand-in for the
// backend the pump relays to.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestPumpRelaysEveryByte sends more than a socket buffer holds through
// each form at once from several clients, so that the epoll form's
// partial writes and their resumption are exercised too.
func TestPumpRelaysEveryByte(t *testing.T) {
	modes := []string{"netpoll"}
	if runtime.GOOS == "linux" {
		modes = append(modes, "epoll", "coro")
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			backend := echoServer(t)
			addrc := make(chan string, 1)
			errc := make(chan error, 1)
			go func() { errc <- run(mode, "127.0.0.1:0", backend, func(a string) { addrc <- a }) }()
			var addr string
			select {
			case addr = <-addrc:
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(5 * time.Second):
				t.Fatal("pump did not start")
			}
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(20 * time.Second))
					want := make([]byte, 4<<20)
					_, _ = rand.Read(want)
					go func() { _, _ = c.Write(want) }()
					got := make([]byte, len(want))
					if _, err := io.ReadFull(c, got); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(got, want) {
						t.Error("the bytes that came back differ from those sent")
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestPumpRefusesAnUnknownMode(t *testing.T) {
	if err := run("splice", "127.0.0.1:0", "127.0.0.1:1", nil); err == nil {
		t.Fatal("want an error for an unknown mode")
	}
}

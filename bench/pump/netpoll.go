package main

import (
	"io"
	"net"
)

func serveNetpoll(ln net.Listener, backend string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relayNetpoll(c, backend)
	}
}

func relayNetpoll(c net.Conn, backend string) {
	defer c.Close()
	s, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(s, c)
		_ = s.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, s)
	_ = c.(*net.TCPConn).CloseWrite()
	<-done
}

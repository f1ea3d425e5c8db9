//go:build !linux

package main

import "errors"

func serveEpoll(string, string, func(string)) error {
	return errors.New("pump: -mode epoll needs Linux")
}

func serveCoro(string, string, func(string)) error {
	return errors.New("pump: -mode coro needs Linux")
}

// Package rawconn wraps a socket so that its reads and writes are raw,
// non-blocking system calls, waiting on the Go runtime's network poller
// only when the socket is not ready.
//
// A proxy's sockets are busy with small messages, and on a machine with
// few cores the peer it wakes with a write often preempts the writing
// thread inside the system call. Through net.Conn every such call enters
// the runtime's blocking-syscall path: the P is marked as in a syscall,
// sysmon wakes every 20 µs to look for it, and hands it to another thread
// when the call seems stuck. Measured under pgbench that cost more CPU than
// the proxy's own work. The sockets are non-blocking, so a raw call never
// waits in the kernel and none of that is needed.
//
// Listen goes one step further for the sockets a TCP listener accepts:
// accept, the socket options and close are raw system calls too, and the
// socket is registered with the runtime's poller directly, with no
// net.Conn (owned.go).
package rawconn
